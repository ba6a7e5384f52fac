//! Gojinn example function: a small notes API on SQLite.
//!
//! - `GET /notes`        lists the notes
//! - `POST /notes`       adds one from `{"text": "…"}`
//! - `GET /notes/<id>`   one note
//! - `DELETE /notes/<id>` removes one
//!
//! Every value goes through bound parameters, never into the SQL text. Needs
//! `permissions { db write }` and a `db_dsn` (see examples/Caddyfile).

use gojinn_sdk::{db, run, Error, Request, Response};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct NewNote {
    text: String,
}

fn main() {
    run(|req| handle(&req).unwrap_or_else(|e| Response::error(e.status(), e.message())));
}

fn handle(req: &Request) -> Result<Response, Error> {
    db::execute(
        "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, created TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        &[],
    )?;
    let id: Option<i64> = req
        .path()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .and_then(|s| s.parse().ok());
    match (req.method.as_str(), id) {
        ("GET", None) => {
            let rows = db::query("SELECT id, text, created FROM notes ORDER BY id", &[])?;
            Ok(Response::json(200, &json!({"notes": rows})))
        }
        ("POST", None) => {
            let Ok(note) = req.json::<NewNote>() else {
                return Ok(Response::error(400, "send {\"text\": \"…\"}"));
            };
            db::execute("INSERT INTO notes (text) VALUES (?1)", &[json!(note.text)])?;
            let rows = db::query("SELECT id, text, created FROM notes WHERE id = last_insert_rowid()", &[])?;
            Ok(Response::json(201, &rows.first()))
        }
        ("GET", Some(id)) => {
            let rows = db::query("SELECT id, text, created FROM notes WHERE id = ?1", &[json!(id)])?;
            match rows.first() {
                Some(row) => Ok(Response::json(200, row)),
                None => Ok(Response::error(404, "no such note")),
            }
        }
        ("DELETE", Some(id)) => match db::execute("DELETE FROM notes WHERE id = ?1", &[json!(id)])? {
            0 => Ok(Response::error(404, "no such note")),
            _ => Ok(Response::new(204)),
        },
        _ => Ok(Response::error(405, "use GET, POST or DELETE")),
    }
}
