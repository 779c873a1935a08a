//! One memory budget for everything the proxy holds whole on a client's behalf: request
//! bodies while they are read and sealed, answers read whole, the text a tool-call stream
//! holds back, and collected structured outputs. Each bound alone is per request; this one is
//! for their sum, so that concurrent hostile answers cannot take the pod's memory. A request
//! that would go past it is refused cleanly (503 `memory_budget_exhausted`).
//!
//! Reservations move in blocks, so a growing buffer touches the shared counter once per block,
//! not once per chunk.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Reservations grow by this much at a time.
const BLOCK: usize = 64 << 10;

#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
}

/// The budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the proxy's memory budget for buffered bodies ({limit} bytes) is spent by requests in flight"
)]
pub struct Exhausted {
    pub(crate) limit: usize,
}

/// A 503 the client may retry once requests in flight have finished.
impl From<Exhausted> for crate::error::ApiError {
    fn from(e: Exhausted) -> Self {
        let mut err = crate::error::ApiError::new(
            503,
            "server_error",
            "memory_budget_exhausted",
            e.to_string(),
        );
        err.retry_after = Some("1".into());
        err
    }
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// An empty reservation against this budget.
    pub fn hold(self: &Arc<Self>) -> Held {
        Held {
            budget: Some(self.clone()),
            reserved: 0,
        }
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn take(&self, bytes: usize) -> Result<(), Exhausted> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.saturating_add(bytes);
            if next > self.limit {
                return Err(Exhausted { limit: self.limit });
            }
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }
}

/// What one request holds of the budget, given back when dropped.
#[derive(Debug, Default)]
pub struct Held {
    budget: Option<Arc<Budget>>,
    reserved: usize,
}

impl Held {
    /// A reservation against no budget (tools and benchmarks that bound nothing).
    pub fn unbounded() -> Held {
        Held::default()
    }

    /// Makes room for `bytes` in all, reserving whole blocks as it grows.
    pub fn cover(&mut self, bytes: usize) -> Result<(), Exhausted> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        if bytes <= self.reserved {
            return Ok(());
        }
        let wanted = bytes.div_ceil(BLOCK).saturating_mul(BLOCK);
        budget.take(wanted - self.reserved)?;
        self.reserved = wanted;
        Ok(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.used.fetch_sub(self.reserved, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_one_limit_and_come_back() {
        let budget = Budget::new(4 * BLOCK);
        let mut a = budget.hold();
        let mut b = budget.hold();
        a.cover(1).unwrap();
        assert_eq!(budget.used(), BLOCK);
        a.cover(BLOCK).unwrap();
        assert_eq!(budget.used(), BLOCK, "within the block reserved");
        a.cover(2 * BLOCK + 1).unwrap();
        b.cover(BLOCK).unwrap();
        assert_eq!(budget.used(), 4 * BLOCK);
        assert_eq!(b.cover(BLOCK + 1), Err(Exhausted { limit: 4 * BLOCK }));
        drop(a);
        assert_eq!(budget.used(), BLOCK);
        b.cover(3 * BLOCK).unwrap();
        drop(b);
        assert_eq!(budget.used(), 0);
        let mut free = Held::unbounded();
        free.cover(usize::MAX).unwrap();
    }
}
