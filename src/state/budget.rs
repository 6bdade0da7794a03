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
//! The allowance is charged on the loading thread: serde's derived `Deserialize` of the state
//! gives no way to hand a budget down to the tally inside it, so `state::load` sets it for the
//! time of the parse ([`with_allowance`]). Without one (tests deserialising a tally directly)
//! nothing is counted.

use std::cell::Cell;

/// How much memory the tally of a state file of `file_bytes` may expand to: with the file's
/// own bytes beside it, 8 × its size + 64 MiB, less what the rest of a run needs. States the
/// timer job writes itself expand to about 5 × their size (4.8 × for a week of 47,000 groups,
/// 5.4 × for the benchmark's); one within the default `--max-state-size` of 10 MB may expand
/// to more than 11 × before it is refused.
pub fn allowance_for(file_bytes: usize) -> u64 {
    (file_bytes as u64).saturating_mul(7) + (48 << 20)
}

thread_local! {
    static REMAINING: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Runs `parse` with `bytes` of expansion allowed to the tallies it deserialises.
pub fn with_allowance<T>(bytes: u64, parse: impl FnOnce() -> T) -> T {
    struct Reset(Option<u64>);
    impl Drop for Reset {
        fn drop(&mut self) {
            REMAINING.set(self.0);
        }
    }
    let _reset = Reset(REMAINING.replace(Some(bytes)));
    parse()
}

/// Takes `bytes` from the allowance; an error once the allowance is spent.
pub fn charge(bytes: u64) -> Result<(), String> {
    let Some(remaining) = REMAINING.get() else {
        return Ok(());
    };
    match remaining.checked_sub(bytes) {
        Some(left) => {
            REMAINING.set(Some(left));
            Ok(())
        }
        None => Err(String::from(
            "it would take more memory than a state file of its size can need \
             (its days refer to far more addresses and names than it lists)",
        )),
    }
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
            assert_eq!(charge(60), Ok(()));
            assert_eq!(charge(40), Ok(()));
            assert!(charge(1).is_err());
        });
        // Outside a load nothing is counted.
        assert_eq!(charge(u64::MAX), Ok(()));
    }

    #[test]
    fn nested_allowances_give_back_the_outer_one() {
        with_allowance(10, || {
            with_allowance(1_000, || assert_eq!(charge(500), Ok(())));
            assert!(charge(11).is_err());
        });
    }

    #[test]
    fn heap_bytes_count_the_items_and_a_header() {
        assert_eq!(heap_bytes(0, 17), 0);
        assert_eq!(heap_bytes(3, 17), 67);
    }
}
