//! The `--format` flag: [`crate::normalize::Format`] as a clap value, so the normalizer does not
//! depend on clap.

use crate::normalize::Format;
use clap::builder::PossibleValue;

impl clap::ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        &Format::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            Format::Normalized => "Schema `mde-relay/v1` (docs/schema.md)",
            Format::Raw => "The original row unmodified, plus `id`, `table` and `source`",
            Format::Ocsf => "OCSF 1.5.0 events (docs/ocsf.md)",
        };
        Some(PossibleValue::new(self.name()).help(help))
    }
}
