//! The system bus connection and the mapping of D-Bus errors onto
//! [`SystemError`], shared by units and network.

use crate::error::SystemError;
use zbus::blocking::Connection;

/// A connection to the system bus, or `Unavailable` naming `service`.
pub(crate) fn system(service: &str) -> Result<Connection, SystemError> {
    Connection::system().map_err(|e| SystemError::Unavailable {
        service: format!("{service} (no system bus)"),
        message: e.to_string(),
    })
}

/// A D-Bus error from a call about `subject` (a unit or link name) to
/// `service`, as a typed error.
pub(crate) fn map(e: zbus::Error, service: &str, subject: &str) -> SystemError {
    let (name, message) = match &e {
        zbus::Error::MethodError(n, m, _) => {
            (n.as_str().to_string(), m.clone().unwrap_or_default())
        }
        zbus::Error::FDO(f) => {
            use zbus::DBusError;
            (
                f.name().as_str().to_string(),
                f.description().unwrap_or_default().to_string(),
            )
        }
        other => return SystemError::Bus(other.to_string()),
    };
    let short = name.rsplit('.').next().unwrap_or("");
    match short {
        "ServiceUnknown" | "NameHasNoOwner" | "NoServer" => SystemError::Unavailable {
            service: service.to_string(),
            message,
        },
        "AccessDenied" | "InteractiveAuthorizationRequired" => SystemError::AccessDenied(message),
        "NoSuchUnit" | "LoadFailed" if name.starts_with("org.freedesktop.systemd1.") => {
            SystemError::NoSuchUnit(subject.to_string())
        }
        "UnitMasked"
        | "OnlyByDependency"
        | "JobTypeNotApplicable"
        | "TransactionIsDestructive"
        | "UnitInactive"
        | "UnitGenerated"
        | "UnitLinked"
        | "BadUnitSetting" => SystemError::Refused {
            unit: subject.to_string(),
            message,
        },
        "InvalidArgs" => SystemError::BadRequest(message),
        _ => SystemError::Bus(format!("{name}: {message}")),
    }
}
