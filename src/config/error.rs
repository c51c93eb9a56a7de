//! Why a configuration was refused: one typed error naming the file or the
//! field at fault.

use std::path::PathBuf;

/// Why a configuration was refused. Each names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file named.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for [`Config`] (names the field and line).
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file named.
        path: PathBuf,
        /// The parser's message, which names the field.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid config field `{field}`: {reason}")]
    Invalid {
        /// Dotted name of the field, as in the TOML file.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}
