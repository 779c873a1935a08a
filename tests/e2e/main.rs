//! End-to-end tests: a real Pingora server on loopback, the simulated Venice over HTTP(S),
//! real HTTP clients (reqwest, and the official OpenAI Python SDK).

mod harness;

mod k8s;
mod layers;

mod aci;
mod agents;
mod attestation;
mod bench;
mod chat;
mod churn;
mod commands;
mod connections;
mod docs;
mod fault_matrix;
mod faults;
mod history;
mod messages;
mod ops;
mod pcs;
mod privacy;
mod provenance;
mod readiness;
mod requests;
mod responses;
mod sdk;
mod sessions;
mod status;
mod structured;
mod tls;
mod tools;
mod workloads;
