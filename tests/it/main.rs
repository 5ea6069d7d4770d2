//! Integration tests: the gate in-process or as a binary, on ephemeral loopback
//! ports, in front of a recording upstream or the real registry.

mod support;

mod audit;
mod auth;
mod authz;
mod binary;
mod clients;
mod differential;
mod elb;
mod errors;
mod examples;
mod first_hour_cli;
mod first_hour_config;
mod first_hour_runtime;
mod forwarding;
mod hardening;
mod harness;
mod head;
mod htpasswd_cmd;
mod import_docker_auth;
mod ldap;
mod oidc;
mod operations;
mod policy;
mod refusals;
mod registry;
mod reload;
mod revocation;
mod robots;
mod robots_token;
mod slow_clients;
mod streaming;
mod throttle;
mod tls;
mod tls_hardening;
mod token;
