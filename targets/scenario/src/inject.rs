//! Build-time fault injection, to prove that a broken image fails its run.
//!
//! Set `SMCD_TARGETS_INJECT` when building an image: `checksum` flips one
//! byte of the received checksum, `panic` panics inside the scenario,
//! `fault` makes the image execute an undefined instruction before the
//! scenario. Unset (or any other value): a normal run. The variable is read
//! by [`inject!`](crate::inject!) in the image crate, so only that small
//! crate is rebuilt when it changes (rustc tracks the variable).

/// The failure an image was built to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Inject {
    /// A normal run.
    None,
    /// Corrupt one byte of the received checksum.
    Checksum,
    /// Panic inside the scenario.
    Panic,
    /// CPU fault (undefined instruction) in the image runtime.
    Fault,
}

impl Inject {
    /// The injection named by `value` (the build-time variable).
    pub const fn parse(value: Option<&str>) -> Self {
        match value {
            Some(v) if eq(v, "checksum") => Inject::Checksum,
            Some(v) if eq(v, "panic") => Inject::Panic,
            Some(v) if eq(v, "fault") => Inject::Fault,
            _ => Inject::None,
        }
    }
}

/// `a == b` in a `const fn`.
const fn eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The [`Inject`] the calling crate was built with (`SMCD_TARGETS_INJECT`).
#[macro_export]
macro_rules! inject {
    () => {
        $crate::Inject::parse(::core::option_env!("SMCD_TARGETS_INJECT"))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(Inject::parse(None), Inject::None);
        assert_eq!(Inject::parse(Some("checksum")), Inject::Checksum);
        assert_eq!(Inject::parse(Some("panic")), Inject::Panic);
        assert_eq!(Inject::parse(Some("fault")), Inject::Fault);
        assert_eq!(Inject::parse(Some("checksumx")), Inject::None);
        assert_eq!(Inject::parse(Some("")), Inject::None);
    }
}
