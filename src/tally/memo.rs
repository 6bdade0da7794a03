//! The groups of recently seen client names, remembered per thread.
//!
//! Every decision names its client, and finding the client's group takes a Public Suffix List
//! lookup and hashing the key found. A mail log names the same hosts again and again (a big
//! provider's forty servers are on half of its lines), so a small table remembers the last name
//! of each of its slots with its group; a name not there is grouped as before. Both threads of
//! a pipelined source prepare entries: each has its own table, and no lock is taken.
//!
//! A slot is picked by FNV of the name: a sender who makes names collide only makes them miss,
//! and they cost what they did without the table.
//! A group depends on the name and the Public Suffix List alone, so a slot keeps the list it
//! was found with, and another list (tests, `--psl`) never reads it.

use std::cell::RefCell;
use std::hash::Hasher;

use super::HashedKey;
use crate::group::Grouper;

/// Slots per thread: a week of a busy server's distinct hosts mostly fit, at about 100 bytes a
/// slot.
const SLOTS: usize = 4096;

struct Slot {
    list_id: u64,
    host: Box<str>,
    group: Option<HashedKey>,
}

thread_local! {
    static SLOTS_OF_THREAD: RefCell<Vec<Option<Slot>>> = const { RefCell::new(Vec::new()) };
}

/// [`Grouper::domain_key`] of `host`, hashed.
pub(super) fn domain_key(grouper: &Grouper, host: &str) -> Option<HashedKey> {
    let list_id = grouper.list_id();
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(host.as_bytes());
    let index = (hasher.finish() % SLOTS as u64) as usize;
    SLOTS_OF_THREAD.with_borrow_mut(|slots| {
        if slots.is_empty() {
            slots.resize_with(SLOTS, || None);
        }
        if let Some(slot) = &slots[index]
            && slot.list_id == list_id
            && *slot.host == *host
        {
            return slot.group.clone();
        }
        let group = grouper.domain_key(host).map(HashedKey::new);
        slots[index] = Some(Slot {
            list_id,
            host: host.into(),
            group: group.clone(),
        });
        group
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::GroupKey;

    fn domain(key: Option<HashedKey>) -> Option<GroupKey> {
        key.map(|k| k.key)
    }

    #[test]
    fn a_remembered_group_is_the_one_of_its_own_list() {
        let builtin = Grouper::builtin();
        // A list without `co.uk`: there, `bulk.co.uk`'s organisation is `co.uk`.
        let loaded = Grouper::from_list_text("// ===BEGIN ICANN DOMAINS===\nuk\n").unwrap();
        let host = "mail.bulk.co.uk";
        for _ in 0..2 {
            assert_eq!(
                domain(domain_key(&builtin, host)),
                Some(GroupKey::Domain("bulk.co.uk".into()))
            );
            assert_eq!(
                domain(domain_key(&loaded, host)),
                Some(GroupKey::Domain("co.uk".into()))
            );
        }
        // A clone reads the same list, and what was remembered with it.
        assert_eq!(
            domain(domain_key(&loaded.clone(), host)),
            Some(GroupKey::Domain("co.uk".into()))
        );
        assert_eq!(domain(domain_key(&builtin, "192.0.2.7")), None);
        assert_eq!(domain(domain_key(&builtin, "192.0.2.7")), None);
    }

    #[test]
    fn names_sharing_a_slot_each_get_their_own_group() {
        let grouper = Grouper::builtin();
        // Three names a slot on average, each asked for twice in a row and then again later.
        for _ in 0..2 {
            for n in 0..3 * SLOTS {
                let host = format!("mx.sender{n}.com");
                let group = HashedKey::new(GroupKey::Domain(format!("sender{n}.com")));
                assert_eq!(domain_key(&grouper, &host).as_ref(), Some(&group));
                assert_eq!(domain_key(&grouper, &host).as_ref(), Some(&group));
            }
        }
        assert_eq!(
            domain(domain_key(&grouper, "a.other.co.uk")),
            Some(GroupKey::Domain("other.co.uk".into()))
        );
    }
}
