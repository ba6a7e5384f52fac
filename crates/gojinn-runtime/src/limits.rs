//! Per-store resource limits that remember *why* a growth failed, so a memory fault
//! is reported as such instead of as an anonymous trap.

use wasmtime::ResourceLimiter;

/// Limits for one sandbox.
pub(crate) struct Limits {
    pub(crate) memory_bytes: usize,
    pub(crate) table_elements: usize,
    /// Set when the guest asked for more memory than allowed.
    pub(crate) memory_exceeded: bool,
    /// Largest linear memory granted so far (instantiation counts as a growth
    /// from zero), in bytes: the sandbox's memory high-water mark.
    pub(crate) memory_peak: usize,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_exceeded = true;
            // A trap rather than `memory.grow` returning -1: most guests abort on
            // allocation failure anyway, and the trap lets us name the fault.
            return Err(wasmtime::format_err!(
                "memory limit of {} bytes exceeded (asked for {desired})",
                self.memory_bytes
            ));
        }
        self.memory_peak = self.memory_peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }
}
