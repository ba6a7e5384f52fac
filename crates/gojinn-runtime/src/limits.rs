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
    /// Times the guest grew its memory (instantiation not counted).
    pub(crate) memory_grows: u32,
}

impl Limits {
    /// Limits of a sandbox whose memory may grow to `memory_bytes`.
    pub(crate) fn new(memory_bytes: u64) -> Self {
        Limits {
            memory_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
            table_elements: crate::engine::TABLE_ELEMENTS,
            memory_exceeded: false,
            memory_peak: 0,
            memory_grows: 0,
        }
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
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
        // Instantiation is the first growth, from zero to the initial size.
        if self.memory_peak > 0 || current > 0 {
            self.memory_grows += 1;
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
