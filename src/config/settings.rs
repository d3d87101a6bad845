//! The settings reader every layer shares: [`Settings`] looks a setting up by name (in the
//! environment, a map, or parsed flags) with the defaults of [`super::SETTINGS`], and its typed
//! getters report a bad value as a [`ConfigError`] naming the setting. The value parsers
//! ([`parse_bool`], [`parse_duration`], [`parse_long_duration`], [`super::parse_size`]) live here
//! and in [`super`].

use std::time::Duration;

/// A setting with a bad or missing value. Displays as `<SETTING> <what is wrong>`; the message
/// never contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} {message}")]
pub struct ConfigError {
    /// The setting's name (`RELAY_WEBHOOK_URL`, or a connection setting such as
    /// `AzureWebJobsStorage`).
    pub setting: String,
    /// What is wrong, starting with a verb (`must be https …`, `is not set …`).
    pub message: String,
}

impl ConfigError {
    /// An error about `setting`.
    pub fn new(setting: &str, message: impl Into<String>) -> Self {
        ConfigError {
            setting: setting.to_string(),
            message: message.into(),
        }
    }
}

/// Looks settings up by name, falling back to the defaults of [`super::SETTINGS`].
/// Blank values count as unset.
pub struct Settings<'a> {
    get: Lookup<'a>,
}

type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

impl<'a> Settings<'a> {
    /// Settings from the process environment.
    pub fn env() -> Settings<'static> {
        Settings::new(super::env)
    }

    /// Settings from any lookup (a map in tests, parsed flags in the CLI).
    pub fn new(get: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Settings { get: Box::new(get) }
    }

    /// The raw value (without default); blank is `None`.
    pub fn raw(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.trim().is_empty())
    }

    /// The value, or the setting's default.
    pub fn value(&self, name: &str) -> Option<String> {
        self.raw(name)
            .or_else(|| super::setting(name).and_then(|s| s.default.map(str::to_string)))
    }

    /// The value, or an error saying it is needed by `why`.
    pub fn required(&self, name: &str, why: &str) -> Result<String, ConfigError> {
        self.value(name)
            .ok_or_else(|| ConfigError::new(name, format!("is not set (needed by {why})")))
    }

    /// A boolean: true/false, 1/0, yes/no, on/off.
    pub fn bool(&self, name: &str) -> Result<bool, ConfigError> {
        match self.value(name) {
            None => Ok(false),
            Some(v) => parse_bool(&v).ok_or_else(|| {
                ConfigError::new(name, format!("must be true or false, not `{}`", v.trim()))
            }),
        }
    }

    /// A whole number of at least `min`.
    pub fn count(&self, name: &str, min: usize) -> Result<usize, ConfigError> {
        let v = self.required(name, "the sink")?;
        match v.trim().parse::<usize>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(ConfigError::new(
                name,
                format!(
                    "must be a whole number of at least {min}, not `{}`",
                    v.trim()
                ),
            )),
        }
    }

    /// A size in bytes (`1000000`, `64KiB`, `1MB`) of at least `min`.
    pub fn size(&self, name: &str, min: usize) -> Result<usize, ConfigError> {
        let v = self.required(name, "the sink")?;
        match super::parse_size(&v)
            .ok()
            .and_then(|n| usize::try_from(n).ok())
        {
            Some(n) if n >= min => Ok(n),
            _ => Err(ConfigError::new(
                name,
                format!(
                    "must be a size of at least {min} bytes (e.g. 1000000, 512KiB, 1MB), not `{}`",
                    v.trim()
                ),
            )),
        }
    }

    /// A positive duration (`30s`, `5m`, `1500ms`, `00:05:00`, or plain seconds).
    pub fn duration(&self, name: &str) -> Result<Duration, ConfigError> {
        let v = self.required(name, "the sink")?;
        parse_duration(&v).filter(|d| !d.is_zero()).ok_or_else(|| {
            ConfigError::new(
                name,
                format!(
                    "must be a positive duration (e.g. 30s, 5m, 1500ms, 00:05:00), not `{}`",
                    v.trim()
                ),
            )
        })
    }
}

/// Parses `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` (any case).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses durations: `500ms`, `30s`, `5m`, `2h`, `1.5s`, plain seconds (`30`), or the
/// `hh:mm:ss` form Functions settings use (`00:05:00`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let t = s.trim();
    if t.contains(':') {
        let parts: Vec<&str> = t.split(':').collect();
        if parts.len() != 3 {
            return None;
        }
        let h: u64 = parts[0].parse().ok()?;
        let m: u64 = parts[1].parse().ok()?;
        let sec: f64 = parts[2].parse().ok()?;
        if m >= 60 || !(0.0..60.0).contains(&sec) {
            return None;
        }
        return Some(Duration::from_secs(h * 3600 + m * 60) + Duration::from_secs_f64(sec));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" => n / 1000.0,
        "" | "s" | "sec" | "secs" => n,
        "m" | "min" | "mins" => n * 60.0,
        "h" | "hr" | "hours" => n * 3600.0,
        _ => return None,
    };
    (0.0..1e9)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

/// Parses durations: everything [`parse_duration`] accepts (`30s`, `15m`, `1h`, `250ms`, bare
/// seconds, `hh:mm:ss`), plus days (`2d`). Used by the drain, Tail and `status` settings.
pub fn parse_long_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let days = t
        .strip_suffix('d')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n >= 0.0 && *n < 1e5);
    days.map(|n| Duration::from_secs_f64(n * 86400.0))
        .or_else(|| parse_duration(t))
        .ok_or_else(|| format!("`{s}` is not a duration (examples: 45s, 15m, 1h, 2d)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("00:05:00"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5 fortnights"), None);
        assert_eq!(parse_duration("00:61:00"), None);
    }

    #[test]
    fn long_durations() {
        let parse_duration = parse_long_duration;
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172800)));
        assert_eq!(parse_duration("00:10:00"), Ok(Duration::from_secs(600)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 fortnights").is_err());
    }
}
