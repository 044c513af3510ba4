//! CDC cursor arithmetic over a ring of `size` bytes.
//!
//! To be built: `Cursor { wrap, count }`, `diff`, `diff_large`, `comp`,
//! `add`, validation against a ring size.
