//! The leader lease of one operator's replicas (PostgreSQL only).
//!
//! ```text
//! replica_lease   name → holder (one process), epoch (fencing number), expires_at (the
//!                 database's clock)
//! tick            acquire when free or expired (epoch + 1), renew when ours (same epoch);
//!                 one statement, so two replicas starting together cannot both win
//! local deadline  the instant before the tick's statement was sent + ttl: past it this
//!                 process stops believing it leads, whatever the database said, so a paused
//!                 or partitioned leader gives up no later than the database's expiry
//! Fence          in the journal's statement, before a signature (`bridge_lease_fence`, a
//!                 function in the database): the row still names this holder and epoch and
//!                 has not expired, read `FOR SHARE` (a taker's update waits for the journal's
//!                 commit, so a takeover and a recorded vote are ordered)
//! ```

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::schema::{Migration, prepare};
use crate::{Db, DbError, Kind, Sql, Value};

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: "",
        postgres: "CREATE TABLE IF NOT EXISTS replica_lease (
        name       TEXT        PRIMARY KEY,
        holder     TEXT        NOT NULL,
        epoch      BIGINT      NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    );",
    },
    // The fence as a function, so the statement that records a vote can check it itself (one
    // round trip): the epoch while the row names this holder and epoch and has not expired,
    // the row locked FOR SHARE until the statement's transaction ends; otherwise an error
    // with SQLSTATE `FENCED_SQLSTATE`, which rolls the statement back.
    Migration {
        version: 2,
        sqlite: "",
        postgres: "CREATE OR REPLACE FUNCTION bridge_lease_fence(
        lease_name TEXT, lease_holder TEXT, lease_epoch BIGINT) RETURNS BIGINT
    LANGUAGE plpgsql VOLATILE AS $fence$
    BEGIN
        PERFORM 1 FROM replica_lease
         WHERE name = lease_name AND holder = lease_holder AND epoch = lease_epoch
           AND expires_at > now()
         FOR SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'lease \"%\": epoch % is no longer this replica''s in the database',
                lease_name, lease_epoch USING ERRCODE = 'BRF01';
        END IF;
        RETURN lease_epoch;
    END
    $fence$;",
    },
];

/// The SQLSTATE `bridge_lease_fence` raises when the lease is not held: mapped to
/// [`DbError::Fenced`].
pub(crate) const FENCED_SQLSTATE: &str = "BRF01";

/// One replica's lease settings.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// The lease's name: one per operator (its replicas share it).
    pub name: String,
    /// This process, unique among the replicas (host, pid and start time).
    pub holder: String,
    /// How long a lease lasts without renewal; the leader renews every third of it.
    pub ttl: Duration,
}

/// What this replica is, as far as it knows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// It holds the lease for `epoch` until its local deadline.
    Leading {
        /// The fencing number of this term.
        epoch: u64,
    },
    /// Another holder has it (or nobody reachable said otherwise).
    Following {
        /// The holder, when the database said.
        leader: Option<String>,
        /// The newest epoch seen (0: none).
        epoch: u64,
    },
}

impl Term {
    /// True while leading.
    pub fn is_leading(&self) -> bool {
        matches!(self, Self::Leading { .. })
    }

    /// The epoch of this term (leading) or the newest seen (following).
    pub fn epoch(&self) -> u64 {
        match self {
            Self::Leading { epoch } | Self::Following { epoch, .. } => *epoch,
        }
    }
}

/// Checked before every signature: this process still holds the lease.
pub trait Fence: Send + Sync + std::fmt::Debug {
    /// The check as one SQL expression (PostgreSQL), for the statement that records a vote, or
    /// [`DbError::Fenced`] at once when the term has ended by this process's clock.
    fn sql(&self) -> Result<FenceSql, DbError>;
    /// By this process's clock: the term has not run out (a paused process wakes past it).
    fn holds_now(&self) -> bool;
    /// This process, as the lease names it (recorded beside each journal row it writes).
    fn holder(&self) -> &str;
    /// Inside a transaction, as a statement of its own: the check of [`Fence::sql`]. The epoch.
    fn check(&self, sql: &mut dyn Sql) -> Result<u64, DbError> {
        let fence = self.sql()?;
        let row = sql.query_opt(&format!("SELECT {}", fence.expr), &fence.params)?;
        let epoch = row.ok_or(DbError::Column {
            index: 0,
            expected: "the fence's epoch",
            found: "no row",
        })?;
        Ok(epoch.int(0)? as u64)
    }
}

/// The fence as an SQL expression.
#[derive(Debug, Clone)]
pub struct FenceSql {
    /// Evaluates to the epoch (BIGINT) while the lease row still names this holder and epoch
    /// and has not expired by the database's clock, and locks the row `FOR SHARE` until the
    /// statement's transaction ends (a takeover waits for that commit). Otherwise the statement
    /// fails with [`DbError::Fenced`] and nothing of it is kept. It uses parameters `$1`…`$n`
    /// (n = `params.len()`): the statement numbers its own after them.
    pub expr: &'static str,
    /// The values of `$1`…`$n`.
    pub params: Vec<Value>,
}

#[derive(Debug)]
struct Local {
    epoch: u64,
    /// Leading until then (None: following).
    until: Option<Instant>,
    leader: Option<String>,
}

/// The lease, as one replica holds or waits for it.
#[derive(Debug)]
pub struct Lease {
    db: Db,
    config: LeaseConfig,
    local: Mutex<Local>,
}

impl Lease {
    /// Prepares the lease table in `db` (PostgreSQL).
    pub fn new(db: Db, config: LeaseConfig) -> Result<Self, DbError> {
        if db.kind() != Kind::Postgres {
            return Err(DbError::Fenced {
                reason: "a leader lease needs [store] backend = \"postgres\"".into(),
            });
        }
        prepare(&db, "lease", MIGRATIONS)?;
        Ok(Self {
            db,
            config,
            local: Mutex::new(Local {
                epoch: 0,
                until: None,
                leader: None,
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Acquires the lease when it is free or expired, renews it when it is this process's.
    /// On an error the local term goes on until its deadline (the database may be back
    /// before it), then ends.
    pub fn tick(&self) -> Result<Term, DbError> {
        let sent = Instant::now();
        let (name, holder) = (self.config.name.clone(), self.config.holder.clone());
        let ttl_ms = i64::try_from(self.config.ttl.as_millis()).unwrap_or(i64::MAX);
        let row = self.db.run(move |sql| {
            // One statement: insert, or take over an expired row (new epoch), or renew ours
            // (same epoch while it has not expired). The row stays unchanged otherwise and
            // RETURNING gives nothing; then read who holds it.
            let won = sql.query_opt(
                "INSERT INTO replica_lease AS l (name, holder, epoch, expires_at)
                 VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond')
                 ON CONFLICT (name) DO UPDATE SET
                     holder = EXCLUDED.holder,
                     epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now()
                                  THEN l.epoch ELSE l.epoch + 1 END,
                     expires_at = EXCLUDED.expires_at
                 WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now()
                 RETURNING epoch",
                &[name.as_str().into(), holder.into(), Value::Int(ttl_ms)],
            )?;
            if let Some(row) = won {
                return Ok((true, row.int(0)?, None));
            }
            let row = sql.query_opt(
                "SELECT holder, epoch FROM replica_lease WHERE name = $1",
                &[name.into()],
            )?;
            match row {
                Some(r) => Ok((false, r.int(1)?, Some(r.text(0)?.to_owned()))),
                None => Ok((false, 0, None)),
            }
        });
        let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        match row {
            Ok((true, epoch, _)) => {
                local.epoch = epoch as u64;
                local.until = Some(sent + self.config.ttl);
                local.leader = Some(self.config.holder.clone());
            }
            Ok((false, epoch, leader)) => {
                local.epoch = epoch as u64;
                local.until = None;
                local.leader = leader;
            }
            Err(e) => {
                if local.until.is_some_and(|u| Instant::now() >= u) {
                    local.until = None;
                    local.leader = None;
                }
                return Err(e);
            }
        }
        Ok(term(&local))
    }

    /// The term by the local clock, without asking the database.
    pub fn term(&self) -> Term {
        let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        if local.until.is_some_and(|u| Instant::now() >= u) {
            local.until = None;
            local.leader = None;
        }
        term(&local)
    }

    /// Gives the lease up now (a clean stop), so a follower takes over at its next tick
    /// instead of waiting for the expiry.
    pub fn release(&self) -> Result<(), DbError> {
        let epoch = {
            let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
            local.until = None;
            local.epoch
        };
        let (name, holder) = (self.config.name.clone(), self.config.holder.clone());
        let epoch = crate::int("epoch", epoch)?;
        self.db.run(move |sql| {
            sql.execute(
                "UPDATE replica_lease SET expires_at = now()
                 WHERE name = $1 AND holder = $2 AND epoch = $3",
                &[name.into(), holder.into(), Value::Int(epoch)],
            )
            .map(drop)
        })
    }
}

fn term(local: &Local) -> Term {
    match local.until {
        Some(_) => Term::Leading { epoch: local.epoch },
        None => Term::Following {
            leader: local.leader.clone(),
            epoch: local.epoch,
        },
    }
}

impl Fence for Lease {
    fn sql(&self) -> Result<FenceSql, DbError> {
        let Term::Leading { epoch } = self.term() else {
            return Err(DbError::Fenced {
                reason: format!(
                    "lease {:?}: this replica's term ended by its own clock",
                    self.config.name
                ),
            });
        };
        Ok(FenceSql {
            expr: "bridge_lease_fence($1, $2, $3)",
            params: vec![
                self.config.name.as_str().into(),
                self.config.holder.as_str().into(),
                Value::Int(crate::int("epoch", epoch)?),
            ],
        })
    }

    fn holds_now(&self) -> bool {
        self.term().is_leading()
    }

    fn holder(&self) -> &str {
        &self.config.holder
    }
}
