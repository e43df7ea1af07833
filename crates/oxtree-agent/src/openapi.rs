//! `GET /v1/openapi.json`: the OpenAPI 3.1 description of the API,
//! written by hand (the API is small, and a derive macro would tie every
//! host type to it); a test keeps its paths equal to
//! [`crate::router::ROUTES`].

use serde_json::{json, Value};

fn body(schema: &str) -> Value {
    json!({"required": false, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn accepted() -> Value {
    json!({
        "202": {"description": "Queued as an operation", "headers": {"Location": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Operation"}}}},
        "400": {"$ref": "#/components/responses/Error"},
        "401": {"$ref": "#/components/responses/Error"},
        "403": {"$ref": "#/components/responses/Error"},
        "413": {"description": "Body larger than 64 KiB"}
    })
}

fn mutation(summary: &str, schema: &str) -> Value {
    json!({"post": {"summary": summary, "requestBody": body(schema), "responses": accepted()}})
}

fn id_param() -> Value {
    json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}])
}

/// The host-management paths (units, journal, network).
fn system_paths() -> Value {
    json!({
            "/v1/units": {"get": {"summary": "The loaded systemd units (systemd's ListUnits)",
                "parameters": [{"name": "type", "in": "query", "schema": {"type": "string", "enum": oxtree_system::names::UNIT_TYPES}}],
                "responses": {"200": {"description": "Units", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"units": {"type": "array", "items": {"$ref": "#/components/schemas/UnitSummary"}}}}}}},
                    "503": {"$ref": "#/components/responses/Error"}}}},
            "/v1/units/{name}": {
                "parameters": unit_param(),
                "get": {"summary": "One unit's state", "responses": {
                    "200": {"description": "Unit", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UnitStatus"}}}},
                    "400": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"}}}},
            "/v1/units/{name}/{action}": {
                "parameters": [unit_param()[0].clone(),
                    {"name": "action", "in": "path", "required": true, "schema": {"type": "string", "enum": ["start", "stop", "restart", "enable", "disable"]}}],
                "post": {"summary": "Start, stop or restart (waiting up to 90 s for systemd's job), or enable or disable (then daemon-reload). Answered directly, not queued; audited.",
                    "requestBody": body("Empty"),
                    "responses": {
                        "200": {"description": "The unit after the action", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UnitActionOutcome"}}}},
                        "400": {"$ref": "#/components/responses/Error"},
                        "403": {"$ref": "#/components/responses/Error"},
                        "404": {"$ref": "#/components/responses/Error"},
                        "409": {"$ref": "#/components/responses/Error"},
                        "500": {"$ref": "#/components/responses/Error"},
                        "504": {"$ref": "#/components/responses/Error"}}}},
            "/v1/units/{name}/journal": {
                "parameters": unit_param(),
                "get": {"summary": "The unit's last journal lines (journalctl -o json)",
                    "parameters": [{"name": "lines", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": oxtree_system::journal::MAX_LINES, "default": 100}}],
                    "responses": {
                        "200": {"description": "Entries, oldest first", "content": {"application/json": {"schema": {
                            "type": "object", "properties": {"entries": {"type": "array", "items": {"$ref": "#/components/schemas/JournalEntry"}}}}}}},
                        "400": {"$ref": "#/components/responses/Error"}}}},
            "/v1/network/links": {"get": {"summary": "systemd-networkd's links, with state and addresses",
                "responses": {"200": {"description": "Links", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"links": {"type": "array", "items": {"$ref": "#/components/schemas/Link"}}}}}}},
                    "503": {"$ref": "#/components/responses/Error"}}}},
            "/v1/network/links/{name}": {
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$"}}],
                "get": {"summary": "One link", "responses": {
                    "200": {"description": "Link", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Link"}}}},
                    "404": {"$ref": "#/components/responses/Error"}}},
                "put": {"summary": "Static addresses, gateway and DNS: /etc/systemd/network/10-oxtree-NAME.network, applied (networkd Reload + ReconfigureLink); audited",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StaticNetwork"}}}},
                    "responses": {
                        "200": {"description": "The link after the change", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Link"}}}},
                        "400": {"$ref": "#/components/responses/Error"},
                        "404": {"$ref": "#/components/responses/Error"}}},
                "delete": {"summary": "Remove the static configuration PUT wrote, and apply what remains; audited",
                    "responses": {
                        "200": {"description": "The link after the change", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Link"}}}},
                        "404": {"$ref": "#/components/responses/Error"}}}}
    })
}

/// Their schemas.
fn system_schemas() -> Value {
    json!({
                "UnitSummary": {"type": "object", "properties": {"name": {"type": "string"}, "description": {"type": "string"},
                    "loadState": {"type": "string"}, "activeState": {"type": "string"}, "subState": {"type": "string"}}},
                "UnitStatus": {"type": "object", "properties": {"name": {"type": "string"}, "description": {"type": "string"},
                    "loadState": {"type": "string"}, "activeState": {"type": "string"}, "subState": {"type": "string"},
                    "unitFileState": {"type": "string"}, "fragmentPath": {"type": "string"},
                    "activeSince": {"type": ["string", "null"], "format": "date-time"},
                    "mainPid": {"type": ["integer", "null"]}, "result": {"type": ["string", "null"]}}},
                "UnitActionOutcome": {"type": "object", "properties": {
                    "action": {"type": "string"},
                    "unit": {"oneOf": [{"$ref": "#/components/schemas/UnitStatus"}, {"type": "null"}]},
                    "changes": {"type": "array", "items": {"type": "object", "properties": {
                        "change": {"type": "string"}, "file": {"type": "string"}, "destination": {"type": "string"}}}}}},
                "JournalEntry": {"type": "object", "properties": {"time": {"type": ["string", "null"]},
                    "priority": {"type": ["integer", "null"]}, "pid": {"type": ["integer", "null"]}, "message": {"type": "string"}}},
                "Link": {"type": "object", "properties": {"index": {"type": "integer"}, "name": {"type": "string"},
                    "kind": {"type": ["string", "null"]}, "operationalState": {"type": ["string", "null"]},
                    "setupState": {"type": ["string", "null"]}, "networkFile": {"type": ["string", "null"]},
                    "addresses": {"type": "array", "items": {"type": "object", "properties": {
                        "address": {"type": "string"}, "prefixLength": {"type": "integer"}, "source": {"type": ["string", "null"]}}}},
                    "dns": {"type": "array", "items": {"type": "string"}}}},
                "StaticNetwork": {"type": "object", "additionalProperties": false, "required": ["addresses"], "properties": {
                    "addresses": {"type": "array", "minItems": 1, "maxItems": 32, "items": {"type": "string", "description": "ADDRESS/PREFIX"}},
                    "gateway": {"type": "string"},
                    "dns": {"type": "array", "maxItems": 32, "items": {"type": "string"}}}}
    })
}

fn unit_param() -> Vec<Value> {
    vec![
        json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 255, "pattern": "^[A-Za-z0-9:_.@\\\\-]+$"}}),
    ]
}

pub fn document() -> Value {
    let mut doc = host_document();
    // Two json! calls: one would pass serde_json's macro recursion limit.
    let merge = |into: &mut Value, more: Value| {
        if let (Some(m), Value::Object(more)) = (into.as_object_mut(), more) {
            m.extend(more);
        }
    };
    merge(&mut doc["paths"], system_paths());
    merge(&mut doc["components"]["schemas"], system_schemas());
    merge(&mut doc["components"]["schemas"], deployment_schemas());
    doc
}

/// The bodies of deploy and of the in-place deployment edits
/// (set-origin, unlock).
fn deployment_schemas() -> Value {
    let flag = json!({"type": "boolean", "default": false});
    let list = json!({"type": "array", "items": {"type": "string"}});
    json!({
        "DeployRequest": {"type": "object", "additionalProperties": false, "required": ["rev"], "properties": {
            "rev": {"type": "string"},
            "os": {"type": "string", "description": "Stateroot (default: the booted or only one)"},
            "stage": flag, "reboot": flag, "lockFinalization": flag,
            "karg": list, "kargAppend": list, "kargDelete": list,
            "kargProcCmdline": {"type": "boolean", "default": false, "description": "Start from the host's /proc/cmdline"},
            "kargNone": flag,
            "origin": {"type": "string", "description": "An origin file's text"},
            "retain": flag, "retainPending": flag, "retainRollback": flag,
            "notAsDefault": flag, "noMerge": flag}},
        "SetOriginRequest": {"type": "object", "additionalProperties": false, "required": ["remote", "url"], "properties": {
            "index": {"type": "integer", "minimum": 0, "description": "Default: the merge deployment"},
            "remote": {"type": "string"}, "url": {"type": "string"},
            "branch": {"type": "string", "description": "Default: the deployment's current ref"},
            "options": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Settings of a newly added remote"}}},
        "OsInitRequest": {"type": "object", "additionalProperties": false, "required": ["osname"], "properties": {
            "osname": {"type": "string"}}},
        "UnlockRequest": {"type": "object", "additionalProperties": false, "properties": {
            "deployment": {"type": "integer", "minimum": 0, "description": "Default: the booted one, else the default one"},
            "hotfix": flag}},
    })
}

fn host_document() -> Value {
    let flag = json!({"type": "boolean", "default": false});
    let os =
        json!({"type": "string", "description": "Stateroot (default: the booted or only one)"});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "oxtreed", "version": "1", "description": "The oxtree host agent: status and queued, cancellable host operations; systemd units, journals and networkd links."},
        "security": [{"bearer": []}, {"clientCert": []}, {"peerCredentials": []}],
        "paths": {
            "/v1/host": {"get": {"summary": "The host status (bootc-shaped Host)",
                "responses": {"200": {"description": "Host", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Host"}}}}}}},
            "/v1/host/upgrade": mutation("Check for, stage, deploy or apply (deploy and reboot) an update", "UpgradeRequest"),
            "/v1/host/rollback": mutation("Make the previous deployment the default", "RollbackRequest"),
            "/v1/host/undeploy": mutation("Delete a deployment by index (admin undeploy), then clean up", "IndexRequest"),
            "/v1/host/set-default": mutation("Make a deployment the default by index (admin set-default)", "IndexRequest"),
            "/v1/host/pin": mutation("Pin or unpin deployments by index (admin pin [--unpin])", "PinRequest"),
            "/v1/host/deploy": mutation("Deploy a refspec or commit", "DeployRequest"),
            "/v1/host/switch": mutation("Follow another refspec (or an ostree-unverified-registry: or ostree-image-signed:docker:// image) and deploy it", "SwitchRequest"),
            "/v1/host/packages": mutation("Layer or remove Debian packages", "PackagesRequest"),
            "/v1/host/kargs": mutation("Edit the kernel arguments of a deployment in place", "KargsRequest"),
            "/v1/host/set-origin": mutation("Make a deployment follow REMOTE:BRANCH, adding the remote if missing (admin set-origin)", "SetOriginRequest"),
            "/v1/host/unlock": mutation("Mount a writable overlay on /usr of a deployment (admin unlock [--hotfix])", "UnlockRequest"),
            "/v1/host/os-init": mutation("Create a stateroot (admin os-init)", "OsInitRequest"),
            "/v1/host/config-diff": {"get": {"summary": "Local changes to /etc of a stateroot's merge deployment (admin config-diff)",
                "parameters": [{"name": "os", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "stateroot, and the modified, removed and added paths", "content": {"application/json": {"schema": {"type": "object"}}}},
                              "400": {"$ref": "#/components/responses/Error"}}}},
            "/v1/host/cleanup": mutation("Delete leftover deployments and unreferenced objects", "Empty"),
            "/v1/host/reboot": mutation("Reboot through the agent's reboot hook", "Empty"),
            "/v1/operations": {"get": {"summary": "Every known operation",
                "responses": {"200": {"description": "Operations", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"operations": {"type": "array", "items": {"$ref": "#/components/schemas/Operation"}}}}}}}}}},
            "/v1/operations/{id}": {
                "parameters": id_param(),
                "get": {"summary": "One operation", "responses": {
                    "200": {"description": "Operation", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Operation"}}}},
                    "404": {"$ref": "#/components/responses/Error"}}},
                "delete": {"summary": "Cancel the operation", "responses": {
                    "202": {"description": "Cancel requested", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Operation"}}}},
                    "404": {"$ref": "#/components/responses/Error"},
                    "409": {"$ref": "#/components/responses/Error"}}}
            },
            "/v1/operations/{id}/cancel": {
                "parameters": id_param(),
                "post": {"summary": "Cancel the operation (same as DELETE)", "responses": {
                    "202": {"description": "Cancel requested", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Operation"}}}},
                    "404": {"$ref": "#/components/responses/Error"},
                    "409": {"$ref": "#/components/responses/Error"}}}
            },
            "/v1/operations/{id}/events": {
                "parameters": id_param(),
                "get": {"summary": "The operation's events as Server-Sent Events",
                    "description": "Each event has an `id` (1, 2, …), an `event` name (its type: state, message, pull-started, pull, pull-done, layering, deploying, done) and JSON `data`. Resume with the Last-Event-ID header or `?after=ID`. A final `end` event without id carries the finished Operation.",
                    "parameters": [
                        {"name": "Last-Event-ID", "in": "header", "schema": {"type": "integer"}},
                        {"name": "after", "in": "query", "schema": {"type": "integer"}}],
                    "responses": {"200": {"description": "text/event-stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                                  "404": {"$ref": "#/components/responses/Error"}}}
            },
            "/v1/updates": {"get": {"summary": "The automatic update loop: its configuration and state (404 without --updates)",
                "responses": {"200": {"description": "Updates status", "content": {"application/json": {"schema": {"type": "object"}}}},
                              "404": {"$ref": "#/components/responses/Error"}}}},
            "/v1/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}}
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A token from the agent's tokens file (TCP+TLS only)"},
                "clientCert": {"type": "mutualTLS"},
                "peerCredentials": {"type": "apiKey", "in": "header", "name": "-", "description": "Unix socket: root or the configured group, by SO_PEERCRED"}
            },
            "responses": {"Error": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "kind": {"type": "string", "enum": ["bad-request", "busy", "failed", "cancelled", "not-found", "conflict", "unauthenticated", "forbidden", "unavailable", "timeout"]},
                    "message": {"type": "string"}}}}},
                "Empty": {"type": "object", "additionalProperties": false},
                "UpgradeRequest": {"type": "object", "additionalProperties": false, "properties": {
                    "mode": {"type": "string", "enum": ["check", "stage", "deploy", "apply", "pull-only", "deploy-only"], "default": "deploy"},
                    "os": os, "allowDowngrade": flag,
                    "overrideCommit": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}},
                "IndexRequest": {"type": "object", "additionalProperties": false, "required": ["index"], "properties": {
                    "index": {"type": "integer", "minimum": 0}}},
                "PinRequest": {"type": "object", "additionalProperties": false, "required": ["indexes"], "properties": {
                    "indexes": {"type": "array", "minItems": 1, "maxItems": 64, "items": {"type": "integer", "minimum": 0}},
                    "unpin": flag}},
                "RollbackRequest": {"type": "object", "additionalProperties": false, "properties": {"reboot": flag}},
                "SwitchRequest": {"type": "object", "additionalProperties": false, "required": ["refspec"], "properties": {
                    "refspec": {"type": "string"}, "os": os, "stage": flag, "reboot": flag}},
                "PackagesRequest": {"type": "object", "additionalProperties": false,
                    "description": "Exactly one of install, uninstall, overrideRemove, overrideReset (non-empty) and overrideResetAll",
                    "properties": {
                        "install": {"type": "array", "items": {"type": "string", "pattern": "^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$"}},
                        "uninstall": {"type": "array", "items": {"type": "string"}},
                        "overrideRemove": {"type": "array", "items": {"type": "string"}, "description": "Remove packages of the base"},
                        "overrideReset": {"type": "array", "items": {"type": "string"}, "description": "Undo removals of these base packages"},
                        "overrideResetAll": flag, "dryRun": flag,
                        "os": os, "stage": flag, "reboot": flag}},
                "KargsRequest": {"type": "object", "additionalProperties": false,
                    "description": "At least one edit; applied as delete, deleteIfPresent, replace, append, appendIfMissing",
                    "properties": {
                        "deployment": {"type": "integer", "default": 0},
                        "append": {"type": "array", "items": {"type": "string"}},
                        "appendIfMissing": {"type": "array", "items": {"type": "string"}},
                        "delete": {"type": "array", "items": {"type": "string"}},
                        "deleteIfPresent": {"type": "array", "items": {"type": "string"}},
                        "replace": {"type": "array", "items": {"type": "string", "description": "NAME=VALUE or NAME=OLD=NEW"}}}},
                "Operation": {"type": "object", "required": ["id", "kind", "state", "request", "createdBy", "created", "events", "eventsUrl"], "properties": {
                    "id": {"type": "string"},
                    "kind": {"type": "string", "enum": crate::request::KINDS},
                    "state": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
                    "request": {"type": "object"},
                    "createdBy": {"type": "string", "description": "uid:N, cert:sha256:…, token:NAME"},
                    "created": {"type": "string", "format": "date-time"},
                    "started": {"type": "string", "format": "date-time"},
                    "finished": {"type": "string", "format": "date-time"},
                    "cancelRequested": {"type": "boolean"},
                    "events": {"type": "integer"},
                    "result": {"type": "object", "description": "outcome: no-change, update-available, pulled-only, staged, deployed, rolled-back, undeployed, default-set, pinned, unpinned, kargs-changed, origin-set, unlocked, stateroot-created, cleaned, rebooting; with deployment, checksum, baseChecksum, refspec, …"},
                    "error": {"type": "object", "properties": {"kind": {"type": "string"}, "message": {"type": "string"}}},
                    "eventsUrl": {"type": "string"}}},
                "Host": {"type": "object", "description": "bootc-shaped: apiVersion org.oxtree/v1, kind Host, spec, status.{booted,staged,rollback,otherDeployments}, deployments",
                    "required": ["apiVersion", "kind", "spec", "status", "deployments"],
                    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                        "spec": {"type": "object"}, "status": {"type": "object"}, "deployments": {"type": "array"}}}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    #[test]
    fn describes_exactly_the_routes() {
        let doc = super::document();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (m, _) in item.as_object().unwrap() {
                if m != "parameters" {
                    documented.insert((m.to_uppercase(), path.clone()));
                }
            }
        }
        let served: BTreeSet<_> = crate::router::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(documented, served);
    }
}
