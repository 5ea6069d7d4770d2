//! The LDAP families, `ldap_operations` and `ldap_duration`, behind a cheap handle
//! the directory client keeps.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use super::{register, register_with_unit};

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// An LDAP operation.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum LdapOp {
    /// A simple bind: the search identity on a new connection, or a user's password check.
    bind,
    /// A search for a user or their groups.
    search,
}

impl LdapOp {
    /// Every value, for the series that exist at 0 from the start.
    const ALL: [LdapOp; 2] = [LdapOp::bind, LdapOp::search];
}

/// How an LDAP operation ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum LdapOutcome {
    /// Success.
    ok,
    /// The directory answered with an error code (a wrong password is one).
    refused,
    /// No answer: connection failure or timeout.
    error,
}

impl LdapOutcome {
    /// Every value, for the series that exist at 0 from the start.
    const ALL: [LdapOutcome; 3] = [LdapOutcome::ok, LdapOutcome::refused, LdapOutcome::error];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LdapLabels {
    op: LdapOp,
    result: LdapOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LdapOpLabels {
    op: LdapOp,
}

/// The LDAP part of the metrics: a cheap handle the directory client keeps.
#[derive(Clone, Debug)]
pub struct LdapMetrics {
    operations: Family<LdapLabels, Counter>,
    duration: HistogramFamily<LdapOpLabels>,
}

impl LdapMetrics {
    /// Registers both families, every `op` × `result` series at 0 from the start.
    pub(super) fn register(registry: &mut Registry) -> LdapMetrics {
        fn buckets() -> Histogram {
            // 0.5 ms to ~16 s.
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        }
        let operations: Family<LdapLabels, Counter> = register(
            registry,
            "ldap_operations",
            "LDAP binds and searches by result (refused: the directory said no, e.g. a wrong password; error: no answer)",
            Family::default(),
        );
        for op in LdapOp::ALL {
            for result in LdapOutcome::ALL {
                drop(operations.get_or_create(&LdapLabels { op, result }));
            }
        }
        let duration = register_with_unit(
            registry,
            "ldap_duration",
            "Time an LDAP bind or search took",
            Unit::Seconds,
            Family::new_with_constructor(buckets as fn() -> Histogram),
        );
        LdapMetrics {
            operations,
            duration,
        }
    }

    /// Counts one operation and its duration.
    pub fn record(&self, op: LdapOp, result: LdapOutcome, elapsed: Duration) {
        self.operations
            .get_or_create(&LdapLabels { op, result })
            .inc();
        self.duration
            .get_or_create(&LdapOpLabels { op })
            .observe(elapsed.as_secs_f64());
    }
}
