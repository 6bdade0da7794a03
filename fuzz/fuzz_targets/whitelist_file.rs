//! A `whitelist_clients` file: postgrey's parsing and matching, and the audit with its Perl
//! regex classifier, on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postgrey_advisor::whitelist;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let list = whitelist::parse(text, "fuzz");
    for name in [
        "mail.example.com",
        "a.b.outbound.protection.outlook.com",
        "unknown",
    ] {
        let _ = list.covers_name(name);
    }
    for address in ["192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"] {
        if let Ok(address) = address.parse() {
            let _ = list.covers_address(address);
        }
    }
    let _ = whitelist::audit(text, "fuzz");
});
