//! Driving Firefox from a test without geckodriver: a headless Firefox in
//! a fresh profile ([`firefox`]) and a client of its built-in remote
//! protocol, Marionette ([`marionette`]).
#![allow(dead_code)]

pub mod firefox;
pub mod marionette;
