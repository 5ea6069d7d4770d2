//! [`Tracked`]: a guard that holds a gauge up by one while it lives.

use prometheus_client::metrics::gauge::Gauge;

/// Holds a gauge up by one while alive.
#[derive(Debug)]
pub struct Tracked(Gauge);

impl Tracked {
    /// Increments `gauge` until the returned guard is dropped.
    pub fn new(gauge: &Gauge) -> Tracked {
        gauge.inc();
        Tracked(gauge.clone())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.dec();
    }
}
