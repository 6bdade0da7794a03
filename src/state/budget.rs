//! What loading a state file may cost in memory.
//!
//! The stored form refers to a group's addresses and names by position, and leaves out what
//! follows from other fields (a day without `i` saw every address of its group; clients that
//! follow from addresses × names): a few bytes of file can stand for kilobytes of counting
//! structures. A file is allowed to expand to a fixed multiple of its size. Before a group's
//! days are expanded, what they will take is worked out from the stored form (how many
//! addresses, networks, names and clients each day will hold), and a file whose expansion
//! would pass its allowance is refused as corrupt — before the memory is taken, not after.
//!
//! serde's derived `Deserialize` of the state gives no way to hand a budget down to the tally
//! inside it, so `state::load` sets one for the time of the parse ([`for_file`]) and the
//! tally's loader takes it ([`current`]) and shares it with the threads that expand its groups.
//! Without one (tests deserialising a tally directly) nothing is counted.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How much memory the tally of a state file of `file_bytes` may expand to: with the file's
/// own bytes beside it, 8 × its size + 64 MiB, less what the rest of a run needs. States the
/// timer job writes itself expand to about 5 × their size (4.8 × for a week of 47,000 groups,
/// 5.4 × for the benchmark's); one within the default `--max-state-size` of 10 MB may expand
/// to more than 11 × before it is refused.
fn allowance_for(file_bytes: usize) -> u64 {
    (file_bytes as u64).saturating_mul(7) + (48 << 20)
}

/// The biggest state file whose groups keep the text they were loaded from (see
/// `stored::LoadedForm`): beside the tally it is as big as the file, and a bigger state is
/// written anew rather than held twice, as `run` does with a serialised tally.
const LOADED_FORMS_MAX: usize = 64 << 20;

/// Bytes of expansion left to a load.
#[derive(Debug)]
pub struct Budget {
    remaining: AtomicU64,
    /// Whether the groups keep their text: the file is small enough.
    pub keeps_loaded_forms: bool,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Budget>>> = const { RefCell::new(None) };
}

/// Runs `parse` of a state file of `file_bytes` with the allowance of its size.
pub fn for_file<T>(file_bytes: usize, parse: impl FnOnce() -> T) -> T {
    let budget = Budget {
        remaining: AtomicU64::new(allowance_for(file_bytes)),
        keeps_loaded_forms: file_bytes <= LOADED_FORMS_MAX,
    };
    with_budget(budget, parse)
}

/// Runs `parse` with `bytes` of expansion allowed to the tallies it deserialises.
#[cfg(test)]
pub fn with_allowance<T>(bytes: u64, parse: impl FnOnce() -> T) -> T {
    let budget = Budget {
        remaining: AtomicU64::new(bytes),
        keeps_loaded_forms: false,
    };
    with_budget(budget, parse)
}

fn with_budget<T>(budget: Budget, parse: impl FnOnce() -> T) -> T {
    struct Reset(Option<Arc<Budget>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.set(self.0.take());
        }
    }
    let _reset = Reset(CURRENT.replace(Some(Arc::new(budget))));
    parse()
}

/// The budget of the load running on this thread, if any.
pub fn current() -> Option<Arc<Budget>> {
    CURRENT.with_borrow(Clone::clone)
}

/// Takes `bytes` from `budget`; an error once it is spent. No budget: nothing is counted.
pub fn charge(budget: Option<&Budget>, bytes: u64) -> Result<(), String> {
    let Some(budget) = budget else {
        return Ok(());
    };
    budget
        .remaining
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(bytes)
        })
        .map(|_| ())
        .map_err(|_| {
            String::from(
                "it would take more memory than a state file of its size can need \
                 (its days refer to far more addresses and names than it lists)",
            )
        })
}

/// What a collection of `n` items of `item_bytes` each takes on the heap: the items, and the
/// allocator's header when there are any.
pub fn heap_bytes(n: usize, item_bytes: usize) -> u64 {
    if n == 0 {
        0
    } else {
        (n as u64).saturating_mul(item_bytes as u64) + 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_is_spent_and_then_refused() {
        with_allowance(100, || {
            let budget = current();
            assert_eq!(charge(budget.as_deref(), 60), Ok(()));
            assert_eq!(charge(budget.as_deref(), 40), Ok(()));
            assert!(charge(budget.as_deref(), 1).is_err());
        });
        // Outside a load nothing is counted.
        assert!(current().is_none());
        assert_eq!(charge(None, u64::MAX), Ok(()));
    }

    #[test]
    fn threads_share_one_allowance() {
        with_allowance(1_000, || {
            let budget = current();
            let budget = budget.as_deref();
            std::thread::scope(|scope| {
                for _ in 0..4 {
                    scope.spawn(move || {
                        for _ in 0..100 {
                            let _ = charge(budget, 3);
                        }
                    });
                }
            });
            // 400 charges of 3 from 1,000: 333 went through, 1 byte is left.
            assert_eq!(charge(budget, 1), Ok(()));
            assert!(charge(budget, 1).is_err());
        });
    }

    #[test]
    fn nested_allowances_give_back_the_outer_one() {
        with_allowance(10, || {
            with_allowance(1_000, || {
                assert_eq!(charge(current().as_deref(), 500), Ok(()))
            });
            assert!(charge(current().as_deref(), 11).is_err());
        });
    }

    #[test]
    fn heap_bytes_count_the_items_and_a_header() {
        assert_eq!(heap_bytes(0, 17), 0);
        assert_eq!(heap_bytes(3, 17), 67);
    }
}
