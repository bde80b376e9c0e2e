//! The OpenAPI 3.0 description of the API, served at `GET /openapi.json`.

use bmp_query::{spec, SearchSpec, ALGORITHMS};
use serde_json::{json, Value};

/// The `(method, path)` of every route the API serves (`/v1/admin/reload` only when enabled; the
/// document routes answer 409 unless the server takes writes; the unnamed routes answer 404 on
/// a server of several collections, and the collection routes on a server of one).
pub const ROUTES: [(&str, &str); 21] = [
    ("post", "/v1/search"),
    ("post", "/v1/search/batch"),
    ("get", "/v1/health"),
    ("get", "/v1/stats"),
    ("post", "/v1/admin/reload"),
    ("post", "/v1/documents"),
    ("post", "/v1/documents/delete"),
    ("delete", "/v1/documents/{id}"),
    ("post", "/v1/refresh"),
    ("get", "/v1/collections"),
    ("get", "/v1/collections/{collection}"),
    ("put", "/v1/collections/{collection}"),
    ("delete", "/v1/collections/{collection}"),
    ("post", "/v1/collections/{collection}/search"),
    ("post", "/v1/collections/{collection}/search/batch"),
    ("post", "/v1/collections/{collection}/documents"),
    ("post", "/v1/collections/{collection}/documents/delete"),
    ("delete", "/v1/collections/{collection}/documents/{id}"),
    ("post", "/v1/collections/{collection}/refresh"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// The `?refresh=true` parameter of the write routes.
fn refresh_parameter() -> Value {
    json!({
        "name": "refresh", "in": "query", "required": false,
        "schema": {"type": "boolean", "default": false},
        "description": "Answer only once the write is visible to searches"
    })
}

fn json_response(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

fn json_body(schema: &str, required: bool) -> Value {
    json!({
        "required": required,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

/// The `algorithm` field, from the table of algorithms.
fn algorithm_property() -> Value {
    let names: Vec<&str> = ALGORITHMS.iter().map(|a| a.name).collect();
    let described: Vec<String> = ALGORITHMS
        .iter()
        .map(|a| {
            let safe = match (a.rank_safe, a.params.is_empty()) {
                (false, _) => "approximate",
                (true, true) => "rank-safe",
                (true, false) => "rank-safe unless its parameters approximate",
            };
            format!("{}: {} ({safe})", a.name, a.summary)
        })
        .collect();
    json!({
        "type": "string",
        "enum": names,
        "default": SearchSpec::default().name(),
        "description": format!("The query processor. {}.", described.join("; "))
    })
}

/// The field of the algorithm parameter `name`, from the table of algorithms (the range and
/// default of its first algorithm: algorithms that share a parameter name share its range).
fn param_property(name: &str) -> Value {
    let owners: Vec<_> = spec::param_owners(name).collect();
    let described: Vec<String> = owners
        .iter()
        .filter_map(|a| {
            let p = a.param(name)?;
            let approximate = if a.rank_safe {
                format!(
                    "; {} (the default) is rank-safe, other values approximate",
                    p.default
                )
            } else {
                String::new()
            };
            Some(format!("{} only: {}{approximate}", a.name, p.meaning))
        })
        .collect();
    let Some(p) = owners.first().and_then(|a| a.param(name)) else {
        return json!({"type": "number"});
    };
    json!({
        "type": "number",
        "exclusiveMinimum": true,
        "minimum": p.min,
        "maximum": p.max,
        "default": p.default,
        "description": format!("{}.", described.join(". "))
    })
}

fn query_properties() -> Value {
    let mut properties = json!({
        "query": {"type": "string", "description": "A text to encode with the server's model (needs --model). Give query or vector, not both."},
        "vector": {
            "type": "object",
            "description": "A sparse query vector: term -> weight (finite, >= 0).",
            "additionalProperties": {"type": "number", "minimum": 0}
        },
        "k": {"type": "integer", "minimum": 1, "default": 10, "description": "Hits wanted (at most the server's --max-k)."},
        "algorithm": algorithm_property(),
        "filter": {"type": "array", "items": {"type": "string"}, "description": "External ids of the only documents that may be returned; ids not in the index are ignored and counted."},
        "rerank": {"type": "integer", "minimum": 1, "description": "Text queries on a server started with --multivec: reorder the top this-many hits (at most k) by Chamfer similarity of token embeddings."},
        "timeout_ms": {"type": "integer", "minimum": 1, "description": "The query's own time budget in milliseconds, from the request's arrival; the server's --time-budget-ms when larger or absent. The search stops there."},
        "partial": {"type": "boolean", "default": false, "description": "Stopped at its time budget, answer with the best hits found so far (flagged partial) rather than 503."},
        "hybrid": {
            "type": "object", "additionalProperties": false,
            "description": "Text queries over an index built with --lexical: fuse the text's learned vector with BM25 over its words. linear: (1 - lexical_weight) * learned / L + lexical_weight * bm25 / B, each part divided by the query's largest possible score in it, exact top k in one pass. rrf: the top k of each part fused by weighted reciprocal rank, (1 - lexical_weight) / (60 + rank) + lexical_weight / (60 + rank).",
            "properties": {
                "lexical_weight": {"type": "number", "minimum": 0, "maximum": 1, "default": bmp_lexical::DEFAULT_LEXICAL_WEIGHT},
                "fusion": {"type": "string", "enum": bmp_lexical::Fusion::ALL.map(bmp_lexical::Fusion::name), "default": "linear"}
            }
        }
    });
    for name in spec::param_names() {
        properties[name] = param_property(name);
    }
    properties
}

/// The routes of one collection: `/v1/{tail}` as the server of one index serves it.
const COLLECTION_ROUTES: [&str; 6] = [
    "search",
    "search/batch",
    "documents",
    "documents/delete",
    "documents/{id}",
    "refresh",
];

/// The `{collection}` path parameter.
fn collection_parameter() -> Value {
    json!({
        "name": "collection", "in": "path", "required": true,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$"},
        "description": "The collection's name: its subdirectory of --collections"
    })
}

/// Adds the routes of a server of several collections to `doc`: each of [`COLLECTION_ROUTES`]
/// under `/v1/collections/{collection}/`, as its unnamed route with the collection's name, and
/// the routes that list, create and drop collections.
fn add_collection_routes(doc: &mut Value) {
    let not_served = error_response("No collection of this name (code no_collection)");
    for tail in COLLECTION_ROUTES {
        let mut item = doc["paths"][format!("/v1/{tail}")].clone();
        if let Some(ops) = item.as_object_mut() {
            for op in ops.values_mut() {
                let mut parameters = vec![collection_parameter()];
                if let Some(own) = op["parameters"].as_array() {
                    parameters.extend(own.iter().cloned());
                }
                op["parameters"] = Value::Array(parameters);
                op["summary"] = json!(format!(
                    "{} (in the collection named)",
                    op["summary"].as_str().unwrap_or_default()
                ));
                op["responses"]["404"] = not_served.clone();
            }
        }
        doc["paths"][format!("/v1/collections/{{collection}}/{tail}")] = item;
    }
    doc["paths"]["/v1/collections"] = json!({"get": {
        "summary": "List the collections (a server started with --collections)",
        "responses": {
            "200": json_response("The collections served, by name", "Collections"),
            "404": error_response("This server serves one index (code no_collections)")
        }
    }});
    doc["paths"]["/v1/collections/{collection}"] = json!({
        "get": {
            "summary": "Facts about one collection",
            "parameters": [collection_parameter()],
            "responses": {"200": json_response("The collection", "Stats"), "404": not_served.clone()}
        },
        "put": {
            "summary": "Create an empty collection",
            "description": "Creates the collection's directory under --collections and serves it, writable. Needs --writable.",
            "parameters": [collection_parameter()],
            "requestBody": json_body("CreateRequest", false),
            "responses": {
                "201": json_response("The new collection", "CollectionInfo"),
                "400": error_response("A bad name, block_size or superblock_size"),
                "409": error_response("The name is taken (code collection_exists), or the server does not take writes (code read_only)")
            }
        },
        "delete": {
            "summary": "Drop a collection",
            "description": "Stops serving the collection, stops its writer (writes not yet applied are dropped with it) and removes its directory. Searches already running finish. Needs --writable.",
            "parameters": [collection_parameter()],
            "responses": {
                "200": json_response("The collection dropped", "Dropped"),
                "404": not_served,
                "409": error_response("The server does not take writes (code read_only)")
            }
        }
    });
    doc["components"]["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer", "description": "An API key (serve --api-keys)"}
    });
    let schemas = &mut doc["components"]["schemas"];
    schemas["CollectionInfo"] = json!({
        "type": "object", "required": ["name", "documents", "segments", "generation", "writable"],
        "properties": {
            "name": {"type": "string"}, "documents": {"type": "integer", "description": "Live documents served"},
            "segments": {"type": "integer"}, "generation": {"type": "integer"},
            "writable": {"type": "boolean"}
        }
    });
    schemas["Collections"] = json!({
        "type": "object", "required": ["collections"],
        "properties": {"collections": {"type": "array", "items": {"$ref": "#/components/schemas/CollectionInfo"}}}
    });
    schemas["CreateRequest"] = json!({
        "type": "object", "additionalProperties": false,
        "properties": {
            "block_size": {"type": "integer", "minimum": 8, "maximum": 256, "description": "Documents per block (default 8)"},
            "superblock_size": {"type": "integer", "description": "Blocks per superblock (a power of two)"}
        }
    });
    schemas["Dropped"] = json!({
        "type": "object", "required": ["dropped", "documents"],
        "properties": {"dropped": {"type": "string"}, "documents": {"type": "integer"}}
    });
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut doc = unnamed_routes();
    add_collection_routes(&mut doc);
    doc
}

/// The OpenAPI document of a server of one index or collection.
fn unnamed_routes() -> Value {
    let mut batch_query =
        json!({"type": "object", "additionalProperties": false, "properties": query_properties()});
    batch_query["properties"]["id"] = json!({
        "oneOf": [{"type": "string"}, {"type": "number"}],
        "description": "Echoed in the result."
    });
    let bad = error_response("Invalid request: the message names the field");
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "bmp search API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Top-k retrieval over a learned-sparse index with Block-Max Pruning. Errors are {\"error\": {\"code\", \"message\"}}. A server started with API keys needs `Authorization: Bearer <key>` on every route but /v1/health, of scope read (searches, stats, listings, metrics, this document), write (adds, deletes, refreshes) or admin (reloads, creating and dropping collections): 401 without a valid key, 403 for too small a scope, 429 with Retry-After past the key's limits."
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/search": {"post": {
                "summary": "Answer one query",
                "requestBody": json_body("SearchRequest", true),
                "responses": {
                    "200": json_response("The hits, best first", "SearchResponse"),
                    "400": bad.clone(),
                    "409": error_response("A rerank against a multi-vector store built for another index than the one served"),
                    "413": error_response("Body larger than --max-body-bytes"),
                    "503": error_response("Time budget exceeded (the search stopped there, without \"partial\": true)")
                }
            }},
            "/v1/search/batch": {"post": {
                "summary": "Answer many queries",
                "requestBody": json_body("BatchRequest", true),
                "responses": {
                    "200": json_response("One result per query, in request order", "BatchResponse"),
                    "400": bad.clone(),
                    "413": error_response("Body larger than --max-body-bytes"),
                    "503": error_response("Time budget exceeded (the search stopped there, without \"partial\": true)")
                }
            }},
            "/v1/health": {"get": {
                "summary": "Liveness",
                "security": [],
                "responses": {"200": json_response("Serving", "Health")}
            }},
            "/v1/stats": {"get": {
                "summary": "Facts about the served index",
                "responses": {"200": json_response("The served index", "Stats")}
            }},
            "/v1/admin/reload": {"post": {
                "summary": "Swap in a rebuilt index atomically",
                "description": "Reopens the served file (or the one named in the body), verifies its checksums and swaps it in; requests see the old index or the new one, never a mix. On failure the old index stays. Disabled with --no-admin. SIGHUP does the same for the served file.",
                "requestBody": json_body("ReloadRequest", false),
                "responses": {
                    "200": json_response("The index now served", "Reload"),
                    "400": bad.clone(),
                    "422": error_response("The index could not be opened or verified; nothing changed")
                }
            }},
            "/v1/documents": {"post": {
                "summary": "Add or replace documents",
                "description": "Adds the documents to the served collection (a document whose id is live already replaces it). Answers once the write is durable: logged in the collection's write-ahead log and fsynced, with the writes of concurrent requests (group commit). Searches see it after the next refresh: within --refresh-ms, once the pending writes reach the size limit, on POST /v1/refresh, or before the answer with ?refresh=true. A refresh writes the pending adds as one segment and merges the smallest segments beyond ten. Only a server started on a collection directory with --writable takes writes.",
                "parameters": [refresh_parameter()],
                "requestBody": json_body("AddRequest", true),
                "responses": {
                    "200": json_response("The write, durable", "AddResponse"),
                    "400": bad.clone(),
                    "409": error_response("This server does not take writes"),
                    "413": error_response("Body larger than --max-body-bytes"),
                    "500": error_response("The write could not be made durable; nothing of it is visible")
                }
            }},
            "/v1/documents/delete": {"post": {
                "summary": "Delete documents by id",
                "description": "Deletes the live documents with these ids (pending adds included); ids that name none are counted. Answers once durable; visible as adds are.",
                "parameters": [refresh_parameter()],
                "requestBody": json_body("DeleteRequest", true),
                "responses": {
                    "200": json_response("The delete, durable", "DeleteResponse"),
                    "400": bad.clone(),
                    "409": error_response("This server does not take writes")
                }
            }},
            "/v1/documents/{id}": {"delete": {
                "summary": "Delete one document",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}, refresh_parameter()],
                "responses": {
                    "200": json_response("The delete, durable", "DeleteResponse"),
                    "404": error_response("No live document has this id"),
                    "409": error_response("This server does not take writes")
                }
            }},
            "/v1/refresh": {"post": {
                "summary": "Make every acknowledged write visible",
                "description": "With --writable: applies the writes logged so far (a segment of the pending adds, the pending deletes, merges) and serves the result. Without: serves the collection's newest generation on disk now. Answers with what is served.",
                "responses": {
                    "200": json_response("What is served now", "RefreshResponse"),
                    "422": error_response("The collection on disk could not be read; the old generation stays served"),
                    "500": error_response("The writes could not be applied; they stay logged and are retried")
                }
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {
                    "description": "OpenMetrics text: request counts by route and status, latency histograms by route and by algorithm",
                    "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}
                }}
            }},
            "/openapi.json": {"get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.0", "content": {"application/json": {"schema": {"type": "object"}}}}}
            }}
        },
        "components": {"schemas": {
            "SearchRequest": {"type": "object", "additionalProperties": false, "properties": query_properties()},
            "BatchRequest": {
                "type": "object", "additionalProperties": false, "required": ["queries"],
                "properties": {"queries": {"type": "array", "minItems": 1, "items": batch_query}}
            },
            "Hit": {
                "type": "object", "required": ["id", "score", "rank"],
                "properties": {
                    "id": {"type": "string", "description": "External document id"},
                    "score": {"type": "number", "description": "The dot product of the query's and the document's weights, as quantized: raw_score times the query's and the index's scales; for a hybrid query, its fused score"},
                    "raw_score": {"type": "integer", "description": "The integer score the index ranks by: the sum of quantized query weight times impact (absent for a hybrid query fused by reciprocal rank)"},
                    "rank": {"type": "integer", "minimum": 1},
                    "rerank_score": {"type": "number", "description": "With rerank: the Chamfer score of a reranked hit"}
                }
            },
            "SearchResponse": {
                "type": "object", "required": ["hits", "took_us", "algorithm", "k", "unknown_terms", "partial"],
                "properties": {
                    "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
                    "took_us": {"type": "integer", "description": "Encoding plus search, in microseconds"},
                    "algorithm": {"type": "string", "example": "bmp:alpha=0.9"},
                    "k": {"type": "integer"},
                    "unknown_terms": {"type": "integer"},
                    "unknown_filter_ids": {"type": "integer"},
                    "encode_us": {"type": "integer"},
                    "rerank_us": {"type": "integer", "description": "With rerank: query embedding plus Chamfer scoring, in microseconds (included in took_us)"},
                    "partial": {"type": "boolean", "description": "true when the search stopped at its time budget (asked with \"partial\": true): the hits are the best of the documents scored so far, not necessarily the top-k"}
                }
            },
            "BatchResponse": {
                "type": "object", "required": ["results"],
                "properties": {"results": {"type": "array", "items": {"allOf": [
                    {"$ref": "#/components/schemas/SearchResponse"},
                    {"type": "object", "properties": {"id": {"oneOf": [{"type": "string"}, {"type": "number"}]}}}
                ]}}}
            },
            "Health": {
                "type": "object", "required": ["status", "documents"],
                "properties": {"status": {"type": "string", "enum": ["ok"]}, "documents": {"type": "integer"}}
            },
            "Stats": {
                "type": "object", "required": ["documents", "terms", "postings", "block_size", "blocks", "file_bytes"],
                "properties": {
                    "documents": {"type": "integer"}, "terms": {"type": "integer"},
                    "postings": {"type": "integer"}, "block_size": {"type": "integer"},
                    "blocks": {"type": "integer"}, "file_bytes": {"type": "integer"},
                    "segments": {"type": "integer", "description": "Segments, when serving a collection"},
                    "generation": {"type": "integer", "description": "Manifest generation, when serving a collection"},
                    "model": {"type": "string"},
                    "multivec": {"type": "string", "description": "The multi-vector store and its model"}
                }
            },
            "ReloadRequest": {
                "type": "object", "additionalProperties": false,
                "properties": {"index": {"type": "string", "description": "Index file or collection directory to serve instead of the current one"}}
            },
            "Reload": {
                "type": "object", "required": ["status", "path", "documents", "took_ms"],
                "properties": {
                    "status": {"type": "string", "enum": ["reloaded"]}, "path": {"type": "string"},
                    "documents": {"type": "integer"}, "took_ms": {"type": "integer"}
                }
            },
            "AddRequest": {
                "type": "object", "required": ["documents"], "additionalProperties": false,
                "properties": {"documents": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["id"], "additionalProperties": false,
                    "description": "Give vector or text, not both.",
                    "properties": {
                        "id": {"type": "string", "description": "External id, unique in the request; no whitespace"},
                        "vector": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}, "description": "Term to weight"},
                        "text": {"type": "string", "description": "The document's text, encoded by the server's model (needs --model; pruned as --doc-top-k and --doc-min-weight say)"}
                    }
                }}}
            },
            "AddResponse": {
                "type": "object", "required": ["added", "replaced", "visible", "generation", "segments", "took_ms"],
                "properties": {
                    "added": {"type": "integer"}, "replaced": {"type": "integer"},
                    "visible": {"type": "boolean", "description": "Whether searches see the write already"},
                    "generation": {"type": "integer"}, "segments": {"type": "integer"},
                    "took_ms": {"type": "integer"}
                }
            },
            "DeleteRequest": {
                "type": "object", "required": ["ids"], "additionalProperties": false,
                "properties": {"ids": {"type": "array", "items": {"type": "string"}}}
            },
            "DeleteResponse": {
                "type": "object", "required": ["deleted", "missing", "visible", "generation"],
                "properties": {
                    "deleted": {"type": "integer"}, "missing": {"type": "integer"},
                    "visible": {"type": "boolean", "description": "Whether searches see the delete already"},
                    "generation": {"type": "integer"}
                }
            },
            "RefreshResponse": {
                "type": "object", "required": ["generation", "segments", "documents"],
                "properties": {
                    "generation": {"type": "integer"}, "segments": {"type": "integer"},
                    "documents": {"type": "integer", "description": "Live documents served"}
                }
            },
            "Error": {
                "type": "object", "required": ["error"],
                "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "example": "invalid_request"},
                        "message": {"type": "string"}
                    }
                }}
            }
        }}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_every_route_and_nothing_else() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let mut described: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.clone(), p.clone()))
            })
            .collect();
        described.sort();
        let mut served: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        served.sort();
        assert_eq!(described, served);
    }

    #[test]
    fn describes_every_algorithm_and_parameter() {
        let props = query_properties();
        let names: Vec<&str> = props["algorithm"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let want: Vec<&str> = ALGORITHMS.iter().map(|a| a.name).collect();
        assert_eq!(names, want);
        assert_eq!(props["algorithm"]["default"], "bmp");
        for a in ALGORITHMS {
            for p in a.params {
                let d = &props[p.name];
                assert_eq!(d["maximum"], json!(p.max), "{}", p.name);
                assert_eq!(d["default"], json!(p.default), "{}", p.name);
                assert!(
                    d["description"].as_str().unwrap().contains(a.name),
                    "{}",
                    p.name
                );
                // One range per parameter name, whichever algorithms take it.
                for other in spec::param_owners(p.name) {
                    let q = other.param(p.name).unwrap();
                    assert_eq!((q.min, q.max, q.default), (p.min, p.max, p.default));
                }
            }
        }
        assert_eq!(
            props["alpha"]["description"],
            "bmp only: bound scaling: a block is visited only while alpha times its upper bound \
             can beat the k-th score; 1 (the default) is rank-safe, other values approximate."
        );
    }
}
