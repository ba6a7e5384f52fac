//! The shipped examples (filled in below).
