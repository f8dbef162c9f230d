//! The protobuf encoding of `/openapi/v2` that client-go's `OpenAPISchema()` insists on
//! (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, decoded with
//! `proto.Unmarshal` into gnostic's `openapi_v2.Document`; JSON is not accepted).
//!
//! The messages below are the subset of gnostic's `openapiv2/OpenAPIv2.proto` we fill, with
//! the same field numbers, derived with `prost` (no protoc). Vendor extensions travel as
//! `NamedAny { name, value: Any { yaml } }`: kube-openapi decodes the `yaml` text, and JSON
//! text is valid YAML.

use prost::Message;
use serde_json::Value;

use crate::Error;

#[derive(Clone, PartialEq, Message)]
pub struct Document {
    #[prost(string, tag = "1")]
    pub swagger: String,
    #[prost(message, optional, tag = "2")]
    pub info: Option<Info>,
    #[prost(message, optional, tag = "8")]
    pub paths: Option<Paths>,
    #[prost(message, optional, tag = "9")]
    pub definitions: Option<Definitions>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Info {
    #[prost(string, tag = "1")]
    pub title: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Any {
    #[prost(string, tag = "2")]
    pub yaml: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct NamedAny {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Paths {
    #[prost(message, repeated, tag = "2")]
    pub path: Vec<NamedPathItem>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NamedPathItem {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<PathItem>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PathItem {
    #[prost(message, optional, tag = "2")]
    pub get: Option<Operation>,
    #[prost(message, optional, tag = "3")]
    pub put: Option<Operation>,
    #[prost(message, optional, tag = "4")]
    pub post: Option<Operation>,
    #[prost(message, optional, tag = "5")]
    pub delete: Option<Operation>,
    #[prost(message, optional, tag = "8")]
    pub patch: Option<Operation>,
    #[prost(message, repeated, tag = "9")]
    pub parameters: Vec<ParametersItem>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Operation {
    #[prost(string, repeated, tag = "1")]
    pub tags: Vec<String>,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "5")]
    pub operation_id: String,
    #[prost(string, repeated, tag = "6")]
    pub produces: Vec<String>,
    #[prost(string, repeated, tag = "7")]
    pub consumes: Vec<String>,
    #[prost(message, repeated, tag = "8")]
    pub parameters: Vec<ParametersItem>,
    #[prost(message, optional, tag = "9")]
    pub responses: Option<Responses>,
    #[prost(string, repeated, tag = "10")]
    pub schemes: Vec<String>,
    #[prost(message, repeated, tag = "13")]
    pub vendor_extension: Vec<NamedAny>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ParametersItem {
    #[prost(oneof = "parameters_item::Oneof", tags = "1")]
    pub oneof: Option<parameters_item::Oneof>,
}

pub mod parameters_item {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Oneof {
        #[prost(message, tag = "1")]
        Parameter(super::Parameter),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct Parameter {
    #[prost(oneof = "parameter::Oneof", tags = "1, 2")]
    pub oneof: Option<parameter::Oneof>,
}

pub mod parameter {
    // Mirrors gnostic's oneof; the size difference is irrelevant for a document built once.
    #[allow(clippy::large_enum_variant)]
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Oneof {
        #[prost(message, tag = "1")]
        BodyParameter(super::BodyParameter),
        #[prost(message, tag = "2")]
        NonBodyParameter(super::NonBodyParameter),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct BodyParameter {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub r#in: String,
    #[prost(bool, tag = "4")]
    pub required: bool,
    #[prost(message, optional, tag = "5")]
    pub schema: Option<Schema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NonBodyParameter {
    #[prost(oneof = "non_body_parameter::Oneof", tags = "3, 4")]
    pub oneof: Option<non_body_parameter::Oneof>,
}

pub mod non_body_parameter {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Oneof {
        #[prost(message, tag = "3")]
        QueryParameterSubSchema(super::QueryParameterSubSchema),
        #[prost(message, tag = "4")]
        PathParameterSubSchema(super::PathParameterSubSchema),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct QueryParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub r#in: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, tag = "6")]
    pub r#type: String,
    #[prost(bool, tag = "20")]
    pub unique_items: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct PathParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub r#in: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, tag = "5")]
    pub r#type: String,
    #[prost(bool, tag = "19")]
    pub unique_items: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct Responses {
    #[prost(message, repeated, tag = "1")]
    pub response_code: Vec<NamedResponseValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NamedResponseValue {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<ResponseValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResponseValue {
    #[prost(oneof = "response_value::Oneof", tags = "1")]
    pub oneof: Option<response_value::Oneof>,
}

pub mod response_value {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Oneof {
        #[prost(message, tag = "1")]
        Response(super::Response),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct Response {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(message, optional, tag = "2")]
    pub schema: Option<SchemaItem>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SchemaItem {
    #[prost(oneof = "schema_item::Oneof", tags = "1")]
    pub oneof: Option<schema_item::Oneof>,
}

pub mod schema_item {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Oneof {
        #[prost(message, tag = "1")]
        Schema(super::Schema),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct Definitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NamedSchema {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Schema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Properties {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TypeItem {
    #[prost(string, repeated, tag = "1")]
    pub value: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ItemsItem {
    #[prost(message, repeated, tag = "1")]
    pub schema: Vec<Schema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AdditionalPropertiesItem {
    #[prost(oneof = "additional_properties_item::Oneof", tags = "1, 2")]
    pub oneof: Option<additional_properties_item::Oneof>,
}

pub mod additional_properties_item {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Oneof {
        #[prost(message, tag = "1")]
        Schema(Box<super::Schema>),
        #[prost(bool, tag = "2")]
        Boolean(bool),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct Schema {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(string, tag = "2")]
    pub format: String,
    #[prost(string, tag = "3")]
    pub title: String,
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(message, optional, tag = "5")]
    pub default: Option<Any>,
    #[prost(double, tag = "7")]
    pub maximum: f64,
    #[prost(double, tag = "9")]
    pub minimum: f64,
    #[prost(string, tag = "13")]
    pub pattern: String,
    #[prost(string, repeated, tag = "19")]
    pub required: Vec<String>,
    #[prost(message, repeated, tag = "20")]
    pub r#enum: Vec<Any>,
    #[prost(message, optional, boxed, tag = "21")]
    pub additional_properties: Option<Box<AdditionalPropertiesItem>>,
    #[prost(message, optional, tag = "22")]
    pub r#type: Option<TypeItem>,
    #[prost(message, optional, tag = "23")]
    pub items: Option<ItemsItem>,
    #[prost(message, repeated, tag = "24")]
    pub all_of: Vec<Schema>,
    #[prost(message, optional, tag = "25")]
    pub properties: Option<Properties>,
    #[prost(bool, tag = "27")]
    pub read_only: bool,
    #[prost(message, repeated, tag = "31")]
    pub vendor_extension: Vec<NamedAny>,
}

/// Deeper than any Kubernetes schema nests between `$ref`s; a bound so conversion of a
/// hostile or broken value cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn strings(value: &Value, key: &str) -> Vec<String> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn any(value: &Value) -> Any {
    Any {
        yaml: value.to_string(),
    }
}

fn extensions(value: &Value) -> Vec<NamedAny> {
    value
        .as_object()
        .map(|map| {
            map.iter()
                .filter(|(k, _)| k.starts_with("x-"))
                .map(|(k, v)| NamedAny {
                    name: k.clone(),
                    value: Some(any(v)),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn named_schemas(value: Option<&Value>, depth: usize) -> Result<Vec<NamedSchema>, Error> {
    let Some(map) = value.and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    map.iter()
        .map(|(name, schema)| {
            Ok(NamedSchema {
                name: name.clone(),
                value: Some(schema_message(schema, depth + 1)?),
            })
        })
        .collect()
}

/// One JSON schema as gnostic's `Schema`.
pub(crate) fn schema_message(value: &Value, depth: usize) -> Result<Schema, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep(MAX_DEPTH));
    }
    let r#type = match value.get("type") {
        Some(Value::String(t)) => Some(TypeItem {
            value: vec![t.clone()],
        }),
        Some(Value::Array(ts)) => Some(TypeItem {
            value: ts
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        }),
        _ => None,
    };
    let items = match value.get("items") {
        Some(Value::Array(list)) => Some(ItemsItem {
            schema: list
                .iter()
                .map(|s| schema_message(s, depth + 1))
                .collect::<Result<_, _>>()?,
        }),
        Some(single @ Value::Object(_)) => Some(ItemsItem {
            schema: vec![schema_message(single, depth + 1)?],
        }),
        _ => None,
    };
    let additional_properties = match value.get("additionalProperties") {
        Some(Value::Bool(b)) => Some(Box::new(AdditionalPropertiesItem {
            oneof: Some(additional_properties_item::Oneof::Boolean(*b)),
        })),
        Some(schema @ Value::Object(_)) => Some(Box::new(AdditionalPropertiesItem {
            oneof: Some(additional_properties_item::Oneof::Schema(Box::new(
                schema_message(schema, depth + 1)?,
            ))),
        })),
        _ => None,
    };
    let properties = match value.get("properties") {
        Some(props @ Value::Object(_)) => Some(Properties {
            additional_properties: named_schemas(Some(props), depth)?,
        }),
        _ => None,
    };
    Ok(Schema {
        r#ref: text(value, "$ref"),
        format: text(value, "format"),
        title: text(value, "title"),
        description: text(value, "description"),
        default: value.get("default").map(any),
        maximum: value
            .get("maximum")
            .and_then(Value::as_f64)
            .unwrap_or_default(),
        minimum: value
            .get("minimum")
            .and_then(Value::as_f64)
            .unwrap_or_default(),
        pattern: text(value, "pattern"),
        required: strings(value, "required"),
        r#enum: value
            .get("enum")
            .and_then(Value::as_array)
            .map(|e| e.iter().map(any).collect())
            .unwrap_or_default(),
        additional_properties,
        r#type,
        items,
        all_of: value
            .get("allOf")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .map(|s| schema_message(s, depth + 1))
                    .collect::<Result<_, _>>()
            })
            .transpose()?
            .unwrap_or_default(),
        properties,
        read_only: value
            .get("readOnly")
            .and_then(Value::as_bool)
            .unwrap_or_default(),
        vendor_extension: extensions(value),
    })
}

fn parameter(value: &Value) -> Result<ParametersItem, Error> {
    let location = text(value, "in");
    let oneof = match location.as_str() {
        "body" => parameter::Oneof::BodyParameter(BodyParameter {
            description: text(value, "description"),
            name: text(value, "name"),
            r#in: location,
            required: value
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or_default(),
            schema: value
                .get("schema")
                .map(|s| schema_message(s, 0))
                .transpose()?,
        }),
        "path" => parameter::Oneof::NonBodyParameter(NonBodyParameter {
            oneof: Some(non_body_parameter::Oneof::PathParameterSubSchema(
                PathParameterSubSchema {
                    required: true,
                    r#in: location,
                    description: text(value, "description"),
                    name: text(value, "name"),
                    r#type: text(value, "type"),
                    unique_items: value
                        .get("uniqueItems")
                        .and_then(Value::as_bool)
                        .unwrap_or_default(),
                },
            )),
        }),
        _ => parameter::Oneof::NonBodyParameter(NonBodyParameter {
            oneof: Some(non_body_parameter::Oneof::QueryParameterSubSchema(
                QueryParameterSubSchema {
                    required: value
                        .get("required")
                        .and_then(Value::as_bool)
                        .unwrap_or_default(),
                    r#in: location,
                    description: text(value, "description"),
                    name: text(value, "name"),
                    r#type: text(value, "type"),
                    unique_items: value
                        .get("uniqueItems")
                        .and_then(Value::as_bool)
                        .unwrap_or_default(),
                },
            )),
        }),
    };
    Ok(ParametersItem {
        oneof: Some(parameters_item::Oneof::Parameter(Parameter {
            oneof: Some(oneof),
        })),
    })
}

fn parameters(value: &Value) -> Result<Vec<ParametersItem>, Error> {
    value
        .get("parameters")
        .and_then(Value::as_array)
        .map(|list| list.iter().map(parameter).collect())
        .unwrap_or_else(|| Ok(Vec::new()))
}

fn operation(value: Option<&Value>) -> Result<Option<Operation>, Error> {
    let Some(value) = value else { return Ok(None) };
    let responses = value
        .get("responses")
        .and_then(Value::as_object)
        .map(|codes| {
            codes
                .iter()
                .map(|(code, response)| {
                    Ok(NamedResponseValue {
                        name: code.clone(),
                        value: Some(ResponseValue {
                            oneof: Some(response_value::Oneof::Response(Response {
                                description: text(response, "description"),
                                schema: response
                                    .get("schema")
                                    .map(|s| schema_message(s, 0))
                                    .transpose()?
                                    .map(|s| SchemaItem {
                                        oneof: Some(schema_item::Oneof::Schema(s)),
                                    }),
                            })),
                        }),
                    })
                })
                .collect::<Result<Vec<_>, Error>>()
        })
        .transpose()?
        .map(|response_code| Responses { response_code });
    Ok(Some(Operation {
        tags: strings(value, "tags"),
        description: text(value, "description"),
        operation_id: text(value, "operationId"),
        produces: strings(value, "produces"),
        consumes: strings(value, "consumes"),
        parameters: parameters(value)?,
        responses,
        schemes: strings(value, "schemes"),
        vendor_extension: extensions(value),
    }))
}

/// Converts a swagger 2.0 JSON document (as built by `v2_json`) into gnostic's message.
pub(crate) fn document(v2: &Value) -> Result<Document, Error> {
    let paths = v2
        .get("paths")
        .and_then(Value::as_object)
        .map(|paths| {
            paths
                .iter()
                .map(|(name, item)| {
                    Ok(NamedPathItem {
                        name: name.clone(),
                        value: Some(PathItem {
                            get: operation(item.get("get"))?,
                            put: operation(item.get("put"))?,
                            post: operation(item.get("post"))?,
                            delete: operation(item.get("delete"))?,
                            patch: operation(item.get("patch"))?,
                            parameters: parameters(item)?,
                        }),
                    })
                })
                .collect::<Result<Vec<_>, Error>>()
        })
        .transpose()?
        .map(|path| Paths { path });
    let definitions = Definitions {
        additional_properties: named_schemas(v2.get("definitions"), 0)?,
    };
    Ok(Document {
        swagger: text(v2, "swagger"),
        info: v2.get("info").map(|info| Info {
            title: text(info, "title"),
            version: text(info, "version"),
        }),
        paths,
        definitions: Some(definitions),
    })
}

/// The encoded bytes of [`document`].
pub(crate) fn encode(v2: &Value) -> Result<Vec<u8>, Error> {
    Ok(document(v2)?.encode_to_vec())
}
