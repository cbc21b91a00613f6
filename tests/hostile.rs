//! Hostile input, end to end: each story starts recording backends and mcp-edge with the rule,
//! limit or route under attack, sends the attack as raw bytes, and asserts (a) the client's
//! answer, (b) what the backends received (usually nothing), (c) that the proxy lives on.
//! Issue "Trust what the proxy reads"; defects from /work/shared/design/review-2026-11.md.
//! One test binary; the stories live in `tests/hostile/`, one file per attack class.
//!
//! How each story failed on 14099b8 (before the fix), as observed:
//!
//! | test | failure on 14099b8 |
//! |------|--------------------|
//! | `bodies::d1_error_bodies_on_a_default_route_are_refused` | not read: 202 from the backend, which received both bodies |
//! | `bodies::d1_error_bodies_with_a_forged_session_token_are_refused` | crash: connection closed, process aborted (`slice_ref`) |
//! | `bodies::d1_error_bodies_on_a_route_with_a_tool_rule_are_refused` | crash: connection closed, process aborted |
//! | `bodies::d1_error_bodies_on_a_route_whose_limit_refuses_are_refused` | crash: connection closed, process aborted |
//! | `bodies::d1_error_bodies_on_a_route_whose_body_keyed_limit_refuses_are_refused` | crash: connection closed, process aborted |
//! | `bodies::d1_chunked_error_bodies_are_refused` | crash: connection closed, process aborted |
//! | `bodies::d1_a_pipelined_error_body_does_not_carry_the_next_request_in` | crash: connection closed before the first response |
//! | `bodies::d5_a_null_id_tools_call_is_refused_with_a_null_id` | treated as a notification: 202 from the backend |
//! | `bodies::d5_a_tools_call_notification_is_routed_by_its_tool` | routed to `main`, not `deploy` |
//! | `bodies::d6_batches_are_refused_by_default` | 200 from the backend (`main`) |
//! | `bodies::d6_an_allowed_batch_for_one_pool_is_forwarded_byte_exact` | config error at start: unknown field `batches` |
//! | `bodies::d6_an_allowed_batch_spanning_two_pools_is_refused` | config error at start: unknown field `batches` |
//! | `bodies::d6_every_element_of_a_batch_is_charged_to_the_limit` | config error at start: unknown field `batches` |
//! | `bodies::d7_a_glob_matches_a_subject_that_contains_a_star` | `*ab` routed to `main`, not the `*b*` rule's pool |
//! | `bodies::edge_validation_refuses_what_is_not_json_rpc_on_a_default_route` | not read: the backend answered (its own 400) |
//! | `bodies::edge_validation_is_off_on_an_explicit_pass_through_route` | passes (control: `inspect = "never"` stays byte-exact) |
//! | `headers::d8_modern_headers_naming_another_tool_than_the_body_are_refused` | routed by headers: 200 from `main` running `deploy_x` |
//! | `headers::d8_modern_headers_naming_another_tool_are_refused_on_a_route_without_rules` | not read: 200 from the backend running `deploy_x` |
//! | `headers::d8_a_modern_tools_call_without_mcp_name_is_refused` | 200 from `main` running `deploy_x` |
//! | `headers::d8_a_modern_request_without_mcp_method_is_refused` | 200 from `deploy` (body read, headers not required) |
//! | `headers::d8_modern_headers_that_match_the_body_are_forwarded_intact` | passes (control) |
//! | `headers::routing_headers_named_hop_by_hop_are_refused_not_stripped` | 200 from `deploy` |
//! | `headers::duplicated_routing_headers_are_refused` | 200 from `deploy` for Mcp-Name/Mcp-Method/MCP-Protocol-Version; 404 for Mcp-Session-Id |
//! | `headers::a_request_without_host_is_refused` | 200 from the backend |
//! | `headers::an_absolute_form_target_that_disagrees_with_host_is_refused` | passes already (Pingora refuses the ambiguous authority) |
//! | `headers::an_absolute_form_target_is_routed_by_its_authority` | with Host: passes; without Host: routed to `main` (404 there) |
//! | `headers::dns_rebinding_a_foreign_host_on_a_loopback_listener_is_forbidden` | 200 from the backend |
//! | `headers::dns_rebinding_a_foreign_origin_on_a_loopback_listener_is_forbidden` | 200 from the backend |
//! | `paths::d2_spellings_of_the_exact_path_land_on_the_exact_route` | all six spellings went to the catch-all |
//! | `paths::d2_encoded_slashes_and_dot_segments_are_refused` | all three went to the catch-all (404 there) |
//! | `paths::d9_a_route_bound_to_a_wildcard_listener_serves_it` | 404 -32601 "no route serves this path or host" |
//! | `smuggling::a_body_left_unread_by_a_refusal_is_never_parsed_as_a_request` | foreign Host not refused: 400 from reading the carrier as JSON, not 403 (guards the new pre-body refusals) |
//! | `conformance::conformance_dns_rebinding_protection_passes_through_the_proxy` | `localhost-host-rebinding-rejected`: FAILURE (got 200) |
//!
//! Found later by attacking the built binary (`targets`, `floods`, `listeners`), failing on b8dfac9 as observed
//! (`sessions::d16_*` got 404, not 400, before its fix; `ips` stories are new config, refused at start before):
//!
//! | test | failure on b8dfac9 |
//! |------|--------------------|
//! | `floods::clients_dropping_heads_flood_no_error_lines_under_rust_log` | one `pingora_proxy` ERROR line per dropped head once `RUST_LOG` is set |
//! | `floods::heads_over_64_kib_get_431_and_reach_no_backend` | the 100 KiB head was proxied (200; Pingora allows 1 MiB, re-parsed after every read) |
//! | `targets::a_host_with_a_trailing_dot_stays_on_its_host_route` | `a.tenant.example.` went to the generic route's pool (`main`) |
//! | `listeners::dns_rebinding_over_ipv4_to_a_dual_stack_listener_is_forbidden` | 200 from the backend: `::ffff:127.0.0.1` was not loopback |
//! | `listeners::tiers_assigned_to_an_ipv4_client_apply_on_a_dual_stack_listener` | the second request got 429: `::ffff:127.0.0.1` is not `"127.0.0.1"` |
//! | `targets::a_standard_method_in_another_case_is_refused_not_forwarded_unread` | `post /mcp` unread: the deploy call reached the default pool |
//! | `targets::a_target_that_is_not_origin_form_is_refused_not_forwarded_as_sent` | routed as `/` to the catch-all, which received `POST mcp` |
//! | `targets::path_parameters_are_refused_since_servlet_backends_strip_them` | the catch-all received `/mcp;x` (a servlet backend's `/mcp`) |
//! | `targets::an_absolute_form_target_without_host_forwards_its_authority_as_host` | the backend received HTTP/1.1 with no `Host` |

mod common;

#[path = "hostile/story.rs"]
mod story;

#[path = "hostile/bodies.rs"]
mod bodies;
#[path = "hostile/conformance.rs"]
mod conformance;
#[path = "hostile/floods.rs"]
mod floods;
#[path = "hostile/headers.rs"]
mod headers;
#[path = "hostile/ips.rs"]
mod ips;
#[path = "hostile/listeners.rs"]
mod listeners;
#[path = "hostile/paths.rs"]
mod paths;
#[path = "hostile/sessions.rs"]
mod sessions;
#[path = "hostile/smuggling.rs"]
mod smuggling;
#[path = "hostile/targets.rs"]
mod targets;
