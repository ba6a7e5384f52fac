//! `gojinn keygen`, `gojinn sign` and `gojinn verify`: Ed25519 keys as hex
//! files and Gojinn's signed-module footer (see `gojinn_runtime::signature`).

use anyhow::{bail, Context as _};
use gojinn_runtime::signature;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Writes `NAME.priv` and `NAME.pub`; refuses to overwrite either.
pub(crate) fn keygen(name: &Path) -> anyhow::Result<()> {
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let private = with_suffix(name, "priv");
    let public = with_suffix(name, "pub");
    for path in [&private, &public] {
        if path.exists() {
            bail!("`{}` already exists; not overwriting a key", path.display());
        }
    }
    write_new(&private, &signature::private_key_hex(&key))?;
    write_new(&public, &signature::public_key_hex(&key.verifying_key()))?;
    println!(
        "wrote {} (keep it secret) and {}",
        private.display(),
        public.display()
    );
    Ok(())
}

/// Signs `module` with the private key file `key`, into `output` or in place.
pub(crate) fn sign(key: &Path, module: &Path, output: Option<&Path>) -> anyhow::Result<()> {
    let text = read_text(key)?;
    let key = signature::parse_private_key(&text)
        .map_err(|e| anyhow::anyhow!("`{}`: {e}", key.display()))?;
    let bytes = std::fs::read(module)
        .with_context(|| format!("cannot read module `{}`", module.display()))?;
    let signed = signature::sign(&bytes, &key);
    let out = output.unwrap_or(module);
    // Write beside the target, then rename: a running `--watch` never sees
    // half a module, and a failure leaves the old file whole.
    let tmp = with_suffix(out, "signing");
    std::fs::write(&tmp, &signed).with_context(|| format!("cannot write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("cannot replace `{}`", out.display()))?;
    println!("signed {}", out.display());
    Ok(())
}

/// Succeeds only when `module` carries a signature by the key in `public`.
pub(crate) fn verify(public: &Path, module: &Path) -> anyhow::Result<()> {
    let text = read_text(public)?;
    let key = signature::parse_public_key(&text)
        .map_err(|e| anyhow::anyhow!("`{}`: {e}", public.display()))?;
    let bytes = std::fs::read(module)
        .with_context(|| format!("cannot read module `{}`", module.display()))?;
    signature::verify(&bytes, &[key])
        .map_err(|e| anyhow::anyhow!("`{}`: {e}", module.display()))?;
    println!("{}: good signature", module.display());
    Ok(())
}

/// `name` with `.suffix` appended (not replacing an extension: `a.wasm` →
/// `a.wasm.signing`).
fn with_suffix(name: &Path, suffix: &str) -> PathBuf {
    let mut s = name.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read key `{}`", path.display()))
}

fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    writeln!(file, "{text}").with_context(|| format!("cannot write `{}`", path.display()))
}
