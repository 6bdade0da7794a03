//! The sample the README's quick start runs on is the week of tests/common/traffic.rs as a
//! Debian mail.log; this keeps the committed copy identical to what the generator makes.
//! `UPDATE_SAMPLE=1 cargo test --test sample` rewrites it.

mod common;

use common::traffic;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/sample/mail.log"
);

#[test]
fn committed_sample_is_the_generated_week() {
    let generated = traffic::syslog_text(&traffic::week());
    if std::env::var_os("UPDATE_SAMPLE").is_some() {
        std::fs::write(SAMPLE, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(SAMPLE).unwrap();
    assert!(
        committed == generated,
        "{SAMPLE} is stale: run UPDATE_SAMPLE=1 cargo test --test sample"
    );
}
