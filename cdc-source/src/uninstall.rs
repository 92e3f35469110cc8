//! Removing what asof installed on a source database: the replication
//! slot, the publication (only one asof created, which carries
//! [`PUBLICATION_MARK`](crate::catalog::PUBLICATION_MARK); never the
//! user's own), and the DDL capture's event triggers and functions.
//!
//! `asof uninstall` finds and removes them ([`find`], then [`remove`]); a
//! capture whose start fails removes with [`remove`] exactly what that
//! start created.

use std::fmt;

use tokio_postgres::error::SqlState;
use tokio_postgres::GenericClient;

use crate::catalog::{self, quote_ident};
use crate::ddl::DdlObjects;

/// One object asof installs on the source.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Installed {
    /// A DDL capture event trigger.
    EventTrigger(String),
    /// A DDL capture trigger function (schema `public`, no arguments).
    Function(String),
    /// A publication asof created.
    Publication(String),
    /// A replication slot.
    Slot(String),
}

impl fmt::Display for Installed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Installed::EventTrigger(n) => write!(f, "event trigger {n}"),
            Installed::Function(n) => write!(f, "function public.{n}()"),
            Installed::Publication(n) => write!(f, "publication {n}"),
            Installed::Slot(n) => write!(f, "replication slot {n}"),
        }
    }
}

/// The DDL capture's objects for `publication`, in creation order
/// (functions, then the triggers that call them).
pub fn ddl_objects(publication: &str) -> Vec<Installed> {
    let names = DdlObjects::for_publication(publication).names().map(str::to_owned);
    let functions = names.iter().cloned().map(Installed::Function);
    functions
        .chain(names.iter().cloned().map(Installed::EventTrigger))
        .collect()
}

/// What removing asof from a database does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removal {
    /// What asof installed, in the order it is dropped.
    pub objects: Vec<Installed>,
    /// Objects that stay, each with the reason.
    pub kept: Vec<String>,
}

/// Why asof could not be removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UninstallError {
    /// A capture is streaming from the slot.
    #[error("replication slot {slot} is in use (is `asof tail` running?); stop the capture first")]
    SlotActive {
        /// Slot name.
        slot: String,
    },
    /// The role may not drop the object.
    #[error("cannot drop {object}: permission denied (connect as a superuser)")]
    Denied {
        /// The object, as [`Installed`] displays it.
        object: String,
    },
    /// The SQL connection failed.
    #[error("database error")]
    Sql(#[from] tokio_postgres::Error),
}

/// Finds what asof installed for `slot` and `publication`. Refuses, before
/// anything is dropped, while a capture streams from the slot.
pub async fn find(client: &impl GenericClient, slot: &str, publication: &str) -> Result<Removal, UninstallError> {
    let mut removal = Removal::default();
    let existing = ddl_objects(publication);
    // Triggers before the functions they call.
    for object in existing.iter().rev() {
        if exists(client, object).await? {
            removal.objects.push(object.clone());
        }
    }
    match catalog::publication_mark(client, publication).await? {
        Some(true) => removal.objects.push(Installed::Publication(publication.to_owned())),
        Some(false) => removal
            .kept
            .push(format!("publication {publication} (not created by asof)")),
        None => {}
    }
    let active: Option<bool> = client
        .query_opt("SELECT active FROM pg_replication_slots WHERE slot_name = $1", &[&slot])
        .await?
        .map(|r| r.get(0));
    match active {
        Some(true) => return Err(UninstallError::SlotActive { slot: slot.to_owned() }),
        Some(false) => removal.objects.push(Installed::Slot(slot.to_owned())),
        None => {}
    }
    Ok(removal)
}

async fn exists(client: &impl GenericClient, object: &Installed) -> Result<bool, tokio_postgres::Error> {
    let (sql, name) = match object {
        Installed::EventTrigger(n) => ("SELECT 1 FROM pg_event_trigger WHERE evtname = $1", n),
        Installed::Function(n) => (
            "SELECT 1 FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace \
             WHERE s.nspname = 'public' AND p.proname = $1 AND p.pronargs = 0",
            n,
        ),
        Installed::Publication(n) => ("SELECT 1 FROM pg_publication WHERE pubname = $1", n),
        Installed::Slot(n) => ("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", n),
    };
    Ok(client.query_opt(sql, &[name]).await?.is_some())
}

/// Drops `objects` in the given order; one already gone is skipped.
pub async fn remove(client: &impl GenericClient, objects: &[Installed]) -> Result<(), UninstallError> {
    for object in objects {
        let result = match object {
            Installed::Slot(n) => {
                let gone = client
                    .query_opt(
                        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
                        &[n],
                    )
                    .await;
                gone.map(drop)
            }
            Installed::EventTrigger(n) => {
                client
                    .batch_execute(&format!("DROP EVENT TRIGGER IF EXISTS {}", quote_ident(n)))
                    .await
            }
            Installed::Function(n) => {
                client
                    .batch_execute(&format!("DROP FUNCTION IF EXISTS public.{}()", quote_ident(n)))
                    .await
            }
            Installed::Publication(n) => {
                client
                    .batch_execute(&format!("DROP PUBLICATION IF EXISTS {}", quote_ident(n)))
                    .await
            }
        };
        result.map_err(|e| match (e.code(), object) {
            (Some(&SqlState::OBJECT_IN_USE), Installed::Slot(slot)) => {
                UninstallError::SlotActive { slot: slot.clone() }
            }
            (Some(&SqlState::INSUFFICIENT_PRIVILEGE), _) => UninstallError::Denied {
                object: object.to_string(),
            },
            _ => UninstallError::Sql(e),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_objects_are_functions_then_their_triggers() {
        let objects = ddl_objects("my_pub");
        assert_eq!(objects.len(), 8);
        assert_eq!(objects[0], Installed::Function("asof_ddl_start_my_pub".into()));
        assert_eq!(objects[7], Installed::EventTrigger("asof_ddl_drop_my_pub".into()));
        assert_eq!(objects[0].to_string(), "function public.asof_ddl_start_my_pub()");
        // Other names are hashed, the same way every time.
        let odd = ddl_objects("My-Pub");
        assert_eq!(odd, ddl_objects("My-Pub"));
        assert_ne!(odd, ddl_objects("my-pub"));
    }
}
