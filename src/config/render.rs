//! The effective config as JSON for the admin `/config` endpoint. Secrets never appear:
//! the session key and the admin token are shown only as whether a file is configured, pool
//! credentials and the identity signing key as `<redacted>` with where they come from.

use serde_json::{json, Value};

use super::model::*;

pub fn to_json(c: &Config) -> Value {
    let pool_name = |i: usize| c.pools.get(i).map_or("?", |p| p.name.as_str());
    json!({
        "source": c.source.as_ref().map(|p| p.display().to_string()),
        "digest": c.digest,
        "proxy": {
            "listen": c.proxy.listen.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "threads": c.proxy.threads,
            "watch_config": c.proxy.watch_config,
            "max_body_bytes": c.proxy.max_body_bytes,
            "grace_period_ms": c.proxy.grace_period.as_millis() as u64,
            "shutdown_timeout_ms": c.proxy.shutdown_timeout.as_millis() as u64,
            "header_timeout_ms": c.proxy.header_timeout.as_millis() as u64,
            "body_timeout_ms": c.proxy.body_timeout.as_millis() as u64,
            "keepalive_timeout_ms": c.proxy.keepalive_timeout.as_millis() as u64,
            "send_timeout_ms": c.proxy.send_timeout.as_millis() as u64,
            "max_connections": c.proxy.max_connections,
            "max_member_streams": c.proxy.max_member_streams,
            "ips": c.proxy.ips.render(),
            "tls": c.proxy.tls.iter().map(|t| json!({
                "listen": t.listen.to_string(),
                "cert_files": t.cert_files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                "server_names": t.server.names(),
                "client_ca_file": t.client_ca_file.as_ref().map(|f| f.display().to_string()),
                "require_client_cert": t.require_client_cert,
            })).collect::<Vec<_>>(),
        },
        "admin": {
            "listen": c.admin.listen.to_string(),
            "allowed_hosts": c.admin.allowed_hosts.iter().map(|h| match h {
                HostRule::Any => "*".to_owned(),
                HostRule::Name { host, port: Some(p) } => format!("{host}:{p}"),
                HostRule::Name { host, port: None } => host.clone(),
            }).collect::<Vec<_>>(),
            "token": c.admin.token.as_ref().map(|_| "<from token_file, redacted>"),
        },
        "sessions": {
            "key": if c.sessions.key_file.is_some() { "<from key_file, redacted>" } else { "<random per process>" },
            "rotation_overlap_ms": c.sessions.rotation_overlap.as_millis() as u64,
            "foreign_ids": if c.sessions.forward_foreign { "forward" } else { "refuse" },
        },

        "log": {
            "format": format!("{:?}", c.log.format).to_lowercase(), "level": c.log.level, "access": c.log.access,
            "access_file": c.log.access_file.as_ref().map(|f| f.display().to_string()),
            "access_slow_ms": c.log.access_slow.as_millis() as u64,
        },

        "metrics": { "tools": c.tool_labels },
        "traces": c.traces.as_ref().map(|t| json!({
            "endpoint": t.endpoint, "protocol": format!("{:?}", t.protocol).to_lowercase(), "sample": t.sample,
            "parent": if t.follow_parent { "follow" } else { "ratio" }, "queue": t.queue, "batch": t.batch,
            "timeout_ms": t.timeout.as_millis() as u64, "interval_ms": t.interval.as_millis() as u64,
            "service_name": t.service_name,
        })),
        "redis": c.redis.as_ref().map(|r| json!({
            "url": r.display_url(),
            "connections": r.connections,
            "timeout_ms": r.timeout.as_millis() as u64,
            "retry_interval_ms": r.retry_interval.as_millis() as u64,
            "key_prefix": r.key_prefix,
        })),
        "pools": c.pools.iter().map(|p| json!({
            "name": p.name,
            "backends": p.backends.iter().map(|b| json!({"addr": b.addr.to_string(), "weight": b.weight})).collect::<Vec<_>>(),
            "stdio": p.stdio.as_ref().map(stdio),
            "path": p.path, "host": p.host, "tls": p.tls,
            "ca_file": p.upstream_tls.ca_file.as_ref().map(|f| f.display().to_string()),
            "client_cert_file": p.upstream_tls.client_cert_file.as_ref().map(|f| f.display().to_string()),
            "connect_timeout_ms": p.timeouts.connect.as_millis() as u64,
            "first_byte_timeout_ms": p.timeouts.first_byte.as_millis() as u64,
            "idle_timeout_ms": p.timeouts.idle.as_millis() as u64,
            "retry": {
                "budget": p.retry.budget,
                "min_per_window": p.retry.min_per_window,
                "backoff_ms": p.retry.backoff.as_millis() as u64,
                "max_backoff_ms": p.retry.max_backoff.as_millis() as u64,
            },
            "breaker": {
                "failures": p.breaker.failures,
                "cooldown_ms": p.breaker.cooldown.as_millis() as u64,
                "max_cooldown_ms": p.breaker.max_cooldown.as_millis() as u64,
            },
            "health": {
                "check": format!("{:?}", p.health.kind).to_lowercase(),
                "interval_ms": p.health.interval.as_millis() as u64,
                "timeout_ms": p.health.timeout.as_millis() as u64,
                "path": p.health.path, "rise": p.health.rise, "fall": p.health.fall,
            },
            "credentials": p.credentials.iter().map(credential).collect::<Vec<_>>(),
            "oauth": p.oauth.as_ref().map(oauth),
            "headers": header_rules(&p.headers),
        })).collect::<Vec<_>>(),
        "limits": c.limits.iter().map(|l| json!({
            "name": l.name,
            "key": l.key.iter().map(|k| match k {
                KeyPart::ClientIp => "client_ip".to_owned(),
                KeyPart::Route => "route".to_owned(),
                KeyPart::Method => "method".to_owned(),
                KeyPart::Tool => "tool".to_owned(),
                KeyPart::Header(h) => format!("header:{h}"),
                KeyPart::Identity => "identity".to_owned(),
                KeyPart::Tenant => "claim:tenant".to_owned(),
            }).collect::<Vec<_>>(),
            "quota": quota(&l.quota),
            "tiers": l.tiers.iter().map(|(n, q)| json!({"name": n, "quota": quota(q)})).collect::<Vec<_>>(),
            // Assignments map key values (often API keys) to tiers: never shown.
            "assign": format!("<{} assignments, redacted>", l.assign.len()),
            "costs": l.costs.iter().map(|(t, c)| json!({"tool": t, "cost": c})).collect::<Vec<_>>(),
            "backend": match l.backend {
                LimitBackend::Local => json!("local"),
                LimitBackend::Redis { on_error } => json!({"redis": {"on_redis_error": on_error.as_str()}}),
            },
        })).collect::<Vec<_>>(),
        "routes": c.routes.iter().map(|r| json!({
            "name": r.name,
            "path": match &r.path { PathMatch::Exact(p) => json!({"exact": p}), PathMatch::Prefix(p) => json!({"prefix": p}) },
            "host": r.host.as_ref().map(|h| h.as_pattern()),
            "listener": r.listener.map(|l| l.to_string()),
            "pool": r.pool.map(pool_name),
            "fallback": r.fallback.iter().map(|&i| pool_name(i)).collect::<Vec<_>>(),
            "inspect": format!("{:?}", r.inspect).to_lowercase(),
            "batches": r.batches,
            "allowed_origins": match &r.origins {
                crate::config::model::Origins::SameHost => json!("same-host"),
                crate::config::model::Origins::Any => json!(["*"]),
                crate::config::model::Origins::List(l) => json!(l),
            },
            "allowed_hosts": r.allowed_hosts,
            "ips": r.ips.render(),
            "limits": r.limits.iter().filter_map(|&i| c.limits.get(i)).map(|l| l.name.as_str()).collect::<Vec<_>>(),
            "access_sample": r.access_sample,
            "trace_sample": r.trace_sample,
            "rules": r.rules.iter().map(|x| json!({
                "method": x.method.as_ref().map(|g| g.as_pattern()),
                "tool": x.tool.as_ref().map(|g| g.as_pattern()),
                "resource": x.resource.as_ref().map(|g| g.as_pattern()),
                "prompt": x.prompt.as_ref().map(|g| g.as_pattern()),
                "pool": x.pool.map(pool_name),
                "fallback": x.fallback.iter().map(|&i| pool_name(i)).collect::<Vec<_>>(),
                "limits": x.limits.iter().filter_map(|&i| c.limits.get(i)).map(|l| l.name.as_str()).collect::<Vec<_>>(),
                "timeouts": overrides(&x.timeouts),
            })).collect::<Vec<_>>(),
            "timeouts": overrides(&r.timeouts),
            "idempotent_tools": r.idempotent_tools.iter().map(|g| g.as_pattern()).collect::<Vec<_>>(),
            "auth": r.auth.accept.iter().filter_map(|&i| c.authenticators.get(i)).map(|a| a.name.as_str()).collect::<Vec<_>>(),
            "pass_token": r.auth.pass_token,
            "public_url": r.auth.public_url,
            "policy": r.policy.as_ref().map(policy),
            "headers": header_rules(&r.headers),
            "federation": r.federation.as_ref().map(|f| federation(f, &pool_name)),
        })).collect::<Vec<_>>(),
        // Names and kinds only: key digests, secrets and key sets are never shown.
        "authenticators": c.authenticators.iter().map(|a| match &a.kind {
            AuthKind::ApiKey(k) => json!({"name": a.name, "kind": "api_key", "header": k.header.name().as_str(), "keys": k.keys.len()}),
            AuthKind::Jwt(j) => json!({"name": a.name, "kind": "jwt", "issuer": j.issuer, "audience": j.audience, "leeway_ms": j.leeway.as_millis() as u64, "keys": j.keys.keys.len()}),
            AuthKind::ClientCert(k) => json!({"name": a.name, "kind": "client_cert", "identity": k.field.as_str(), "allow": k.allow.len(), "tenant": k.tenant, "roles": k.roles, "scopes": k.scopes}),
        }).collect::<Vec<_>>(),
    })
}

/// A policy as it was compiled: role and scope masks shown as names again.
fn policy(p: &PolicyConfig) -> Value {
    let names = |mask: u128, table: &[String]| -> Vec<String> {
        table.iter().enumerate().filter(|(i, _)| mask & (1u128 << i) != 0).map(|(_, n)| n.clone()).collect()
    };
    let globs = |g: &[crate::glob::Glob]| g.iter().map(|g| g.as_pattern()).collect::<Vec<_>>();
    json!({
        "deny_as": p.deny_as.as_str(),
        "unknown_style": format!("{:?}", p.unknown_style),
        "rules": p.rules.iter().map(|r| json!({
            "effect": if r.effect == Effect::Allow { "allow" } else { "deny" },
            "deny_as": r.deny_as.as_str(),
            "ids": globs(&r.who.ids),
            "tenants": globs(&r.who.tenants),
            "roles": names(r.who.roles, &p.roles),
            "scopes": names(r.who.scopes, &p.scopes),
            "claims": r.who.claims.iter().map(|(k, v)| json!({"claim": k, "values": v})).collect::<Vec<_>>(),
            "methods": globs(&r.what.methods),
            "tools": globs(&r.what.tools),
            "resources": globs(&r.what.resources),
            "prompts": globs(&r.what.prompts),
            "require_scopes": names(r.require, &p.scopes),
        })).collect::<Vec<_>>(),
    })
}

fn overrides(t: &TimeoutOverrides) -> Value {
    let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as u64);
    json!({ "connect_ms": ms(t.connect), "first_byte_ms": ms(t.first_byte), "idle_ms": ms(t.idle) })
}

fn quota(q: &Quota) -> Value {
    json!({
        "rate": q.rate.map(|(n, per)| format!("{n}/{}s", per.as_secs())),
        "burst": q.burst,
        "concurrency": q.concurrency,
    })
}

/// A federated route's members and catalog settings.
fn federation<'a>(f: &super::model::Federation, pool_name: &dyn Fn(usize) -> &'a str) -> Value {
    json!({
        "members": f.members.iter().map(|m| json!({"pool": pool_name(m.pool), "prefix": m.prefix})).collect::<Vec<_>>(),
        "catalog_ttl_ms": u64::try_from(f.catalog_ttl.as_millis()).unwrap_or(u64::MAX),
        "failure_mode": if f.fail_closed { "closed" } else { "open" },
        "page_size": f.page_size,
        "catalog_max_bytes": f.catalog_max_bytes,
        "prefix_mode": f.prefix_mode.key(),
        "result_cache": f.results.as_ref().map(|r| json!({
            "tools": r.tools.iter().map(|g| g.as_pattern()).collect::<Vec<_>>(),
            "read_only_hint": r.read_only_hint,
            "ttl_ms": u64::try_from(r.ttl.as_millis()).unwrap_or(u64::MAX),
            "max_bytes": r.max_bytes,
        })),
    })
}

/// A stdio pool's processes: the command, how many arguments (an argument may hold a secret
/// written inline, so none is shown) and the names of the environment variables.
fn stdio(s: &super::stdio::StdioConfig) -> Value {
    json!({
        "command": s.command.display().to_string(),
        "args": s.args.len(),
        "cwd": s.cwd.as_ref().map(|d| d.display().to_string()),
        "env": s.env_names,
        "user": s.user.as_ref().map(|u| &u.name),
        "processes": s.processes,
        "start_timeout_ms": s.start_timeout.as_millis() as u64,
        "restart_backoff_ms": s.restart_backoff.as_millis() as u64,
        "max_restart_backoff_ms": s.max_restart_backoff.as_millis() as u64,
        "ping_interval_ms": s.ping_interval.as_millis() as u64,
        "per_session": s.sessions.is_some(),
        "max_sessions": s.sessions.map(|s| s.max),
        "session_idle_ms": s.sessions.map(|s| s.idle.as_millis() as u64),
    })
}

/// A pool credential: its header and source, never its value.
fn credential(c: &Credential) -> Value {
    match &c.source {
        CredentialSource::Bridge => json!({"header": c.header.as_str(), "stdio_bridge": true, "value": "<redacted>"}),
        CredentialSource::Env(var) => json!({"header": c.header.as_str(), "env": var, "value": "<redacted>"}),
        CredentialSource::File(f) => {
            json!({"header": c.header.as_str(), "file": f.display().to_string(), "value": "<redacted>"})
        }
    }
}

/// A pool's OAuth client: where its secret comes from, never the secret.
fn oauth(o: &OAuthClient) -> Value {
    let source = match &o.secret_source {
        CredentialSource::Env(var) => json!({"env": var}),
        CredentialSource::File(f) => json!({"file": f.display().to_string()}),
        CredentialSource::Bridge => json!({"stdio_bridge": true}),
    };
    json!({
        "grant": o.grant.as_str(),
        "token_url": o.token_url,
        "client_id": o.client_id,
        "client_auth": o.client_auth.as_str(),
        "client_secret": "<redacted>",
        "client_secret_source": source,
        "scope": o.scope,
        "resource": o.resource,
        "audience": o.audience,
    })
}

fn header_rules(h: &HeaderRules) -> Value {
    let ops = |ops: &[HeaderOp]| {
        ops.iter()
            .map(|op| match op {
                HeaderOp::Remove(n) => json!({"remove": n.as_str()}),
                HeaderOp::Set(n, t) => json!({"set": n.as_str(), "value": t.as_str()}),
                HeaderOp::Add(n, t) => json!({"add": n.as_str(), "value": t.as_str()}),
            })
            .collect::<Vec<_>>()
    };
    json!({
        "forward_identity": h.identity.as_ref().map(|f| json!({
            "id": f.id.as_ref().map(|n| n.as_str()),
            "tenant": f.tenant.as_ref().map(|n| n.as_str()),
            "sign_with": f.sign.as_ref().map(|s| json!({
                "key_file": s.key_file.display().to_string(),
                "key": "<redacted>",
                "header": s.header.as_str(),
                "timestamp_header": s.timestamp.as_str(),
            })),
        })),
        "request": ops(&h.request),
        "response": ops(&h.response),
    })
}
