//! End-to-end tests: the real `sidekey-agent` binary against real OpenBao, PostgreSQL and
//! moto, which `tests/run.sh` installs and starts (see README). One test binary, one module
//! per user concern; the harness is in `support`.

mod support;

mod access_policy;
mod agent_aws;
mod agent_aws_web_identity;
mod agent_cache;
mod agent_config;
mod agent_credential_process;
mod agent_dev;
mod agent_exec;
mod agent_exit;
mod agent_flood;
mod agent_ha;
mod agent_hostile;
mod agent_lifecycle;
mod agent_outage;
mod agent_own_files;
mod agent_token_flood;
mod agent_vault_auth;
mod agent_vault_database;
mod agent_vault_kv;
mod agent_vault_login;
mod agent_vault_pki;
mod bad_input;
mod cli_conventions;
mod deploy;
mod file_delivery;
mod file_templates;
mod leak_loop;
mod owned_secrets;
mod proxy_postgres;
mod registry;
mod scan_artifact;
mod scan_aws_verify;
mod scan_corpus;
mod scan_files;
mod scan_git;
mod scan_gitleaks_config;
mod scan_hostile;
mod scan_incomplete;
mod scan_inputs;
mod scan_self;
mod scan_vault_env;
mod scan_vault_tls;
