//! End-to-end tests of the `lupa` binary: every command on SQLite and on
//! PostgreSQL with Redis, the JSON documents, the exit codes, the demo, and
//! that no secret is ever printed.

mod demo;
mod exit_codes;
mod lifecycle;
mod output;
mod secrets;
mod support;
