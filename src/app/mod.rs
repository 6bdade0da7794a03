//! One module per command: each wires sources, the pure core and renderers together.
//! `inputs` holds what several commands share.

pub mod audit;
pub mod check;
pub mod edit;
pub mod inputs;
pub mod report;
pub mod run;
