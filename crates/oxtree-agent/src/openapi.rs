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

pub fn document() -> Value {
    let flag = json!({"type": "boolean", "default": false});
    let os =
        json!({"type": "string", "description": "Stateroot (default: the booted or only one)"});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "oxtreed", "version": "1", "description": "The oxtree host agent: status and queued, cancellable host operations."},
        "security": [{"bearer": []}, {"clientCert": []}, {"peerCredentials": []}],
        "paths": {
            "/v1/host": {"get": {"summary": "The host status (bootc-shaped Host)",
                "responses": {"200": {"description": "Host", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Host"}}}}}}},
            "/v1/host/upgrade": mutation("Check for, stage, deploy or apply (deploy and reboot) an update", "UpgradeRequest"),
            "/v1/host/rollback": mutation("Make the previous deployment the default", "RollbackRequest"),
            "/v1/host/deploy": mutation("Deploy a refspec or commit", "DeployRequest"),
            "/v1/host/switch": mutation("Follow another refspec (or an ostree-unverified-registry: image) and deploy it", "SwitchRequest"),
            "/v1/host/packages": mutation("Layer or remove Debian packages", "PackagesRequest"),
            "/v1/host/kargs": mutation("Edit the kernel arguments of a deployment in place", "KargsRequest"),
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
                    "kind": {"type": "string", "enum": ["bad-request", "busy", "failed", "cancelled", "not-found", "conflict", "unauthenticated", "forbidden"]},
                    "message": {"type": "string"}}}}},
                "Empty": {"type": "object", "additionalProperties": false},
                "UpgradeRequest": {"type": "object", "additionalProperties": false, "properties": {
                    "mode": {"type": "string", "enum": ["check", "stage", "deploy", "apply"], "default": "deploy"},
                    "os": os, "allowDowngrade": flag,
                    "overrideCommit": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}},
                "RollbackRequest": {"type": "object", "additionalProperties": false, "properties": {"reboot": flag}},
                "DeployRequest": {"type": "object", "additionalProperties": false, "required": ["rev"], "properties": {
                    "rev": {"type": "string"}, "os": os, "stage": flag, "reboot": flag}},
                "SwitchRequest": {"type": "object", "additionalProperties": false, "required": ["refspec"], "properties": {
                    "refspec": {"type": "string"}, "os": os, "stage": flag, "reboot": flag}},
                "PackagesRequest": {"type": "object", "additionalProperties": false,
                    "description": "Exactly one of install and uninstall, non-empty",
                    "properties": {
                        "install": {"type": "array", "items": {"type": "string", "pattern": "^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$"}},
                        "uninstall": {"type": "array", "items": {"type": "string"}},
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
                    "result": {"type": "object", "description": "outcome: no-change, update-available, pulled-only, staged, deployed, rolled-back, kargs-changed, cleaned, rebooting; with deployment, checksum, baseChecksum, refspec, …"},
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
