//! Build-time fault injection, to prove that a broken image fails its run.
//!
//! Set `SMCD_TARGETS_INJECT` when building an image (rustc tracks the
//! variable, so changing it rebuilds): `checksum` flips one byte of the
//! received checksum, `panic` panics inside the scenario, `fault` makes the
//! image execute an undefined instruction before the scenario. Unset (or any
//! other value): a normal run.

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

/// The injection this build was compiled with.
pub fn inject() -> Inject {
    match option_env!("SMCD_TARGETS_INJECT") {
        Some("checksum") => Inject::Checksum,
        Some("panic") => Inject::Panic,
        Some("fault") => Inject::Fault,
        _ => Inject::None,
    }
}
