//! JavaScript arguments into plain Rust values, with a TypeError message
//! (naming the argument) for a value of the wrong type. Only types are
//! checked here; what a value means (an id, a key, an environment name) is
//! the core's to decide.

use napi::bindgen_prelude::*;
use napi::{JsDate, JsValue, ValueType};
use serde_json::{Map, Number, Value};

/// A TypeError message.
pub type TypeResult<T> = std::result::Result<T, String>;

/// How deep an options object may nest.
const MAX_DEPTH: u32 = 8;

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "a boolean",
        ValueType::Number => "a number",
        ValueType::String => "a string",
        ValueType::Symbol => "a symbol",
        ValueType::Object => "an object",
        ValueType::Function => "a function",
        ValueType::External => "an external value",
        ValueType::BigInt => "a bigint",
        _ => "a value of unknown type",
    }
}

fn napi_err(e: Error, path: &str) -> String {
    format!("{path}: {}", e.reason)
}

/// A JavaScript value as JSON; `undefined` (and object fields holding it)
/// is none. A `Date` becomes its RFC 3339 text; functions, symbols, bigints
/// and non-finite numbers are TypeErrors.
pub fn to_json(v: &Unknown, path: &str) -> TypeResult<Option<Value>> {
    to_json_depth(v, path, 0)
}

fn to_json_depth(v: &Unknown, path: &str, depth: u32) -> TypeResult<Option<Value>> {
    let t = v.get_type().map_err(|e| napi_err(e, path))?;
    let value = match t {
        ValueType::Undefined => return Ok(None),
        ValueType::Null => Value::Null,
        ValueType::Boolean => Value::Bool(unsafe { v.cast::<bool>() }.map_err(|e| napi_err(e, path))?),
        ValueType::Number => {
            let n = unsafe { v.cast::<f64>() }.map_err(|e| napi_err(e, path))?;
            Value::Number(Number::from_f64(n).ok_or_else(|| format!("{path} must be a finite number"))?)
        }
        ValueType::String => Value::String(unsafe { v.cast::<String>() }.map_err(|e| napi_err(e, path))?),
        ValueType::Object => {
            if depth >= MAX_DEPTH {
                return Err(format!("{path} nests too deeply"));
            }
            if v.is_date().map_err(|e| napi_err(e, path))? {
                let date = unsafe { v.cast::<JsDate>() }.map_err(|e| napi_err(e, path))?;
                let millis = date.value_of().map_err(|e| napi_err(e, path))?;
                return date_text(millis)
                    .map(|s| Some(Value::String(s)))
                    .ok_or_else(|| format!("{path} is an invalid Date"));
            }
            if v.is_array().map_err(|e| napi_err(e, path))? {
                let array = unsafe { v.cast::<Array>() }.map_err(|e| napi_err(e, path))?;
                let mut items = Vec::with_capacity(array.len() as usize);
                for i in 0..array.len() {
                    let item: Unknown =
                        array.get(i).map_err(|e| napi_err(e, path))?.unwrap_or_else(|| unreachable_undefined(v));
                    items.push(to_json_depth(&item, &format!("{path}[{i}]"), depth + 1)?.unwrap_or(Value::Null));
                }
                Value::Array(items)
            } else {
                let obj = unsafe { v.cast::<Object>() }.map_err(|e| napi_err(e, path))?;
                let mut map = Map::new();
                for key in Object::keys(&obj).map_err(|e| napi_err(e, path))? {
                    let item: Unknown = obj.get_named_property(&key).map_err(|e| napi_err(e, path))?;
                    if let Some(value) = to_json_depth(&item, &format!("{path}.{key}"), depth + 1)? {
                        map.insert(key, value);
                    }
                }
                Value::Object(map)
            }
        }
        other => return Err(format!("{path} must not be {}", type_name(other))),
    };
    Ok(Some(value))
}

/// An array hole reads as `undefined`; `Array::get` gives none for it.
fn unreachable_undefined<'a>(v: &Unknown<'a>) -> Unknown<'a> {
    let env = v.value().env;
    let mut raw = std::ptr::null_mut();
    unsafe { sys::napi_get_undefined(env, &mut raw) };
    unsafe { Unknown::from_raw_unchecked(env, raw) }
}

fn date_text(millis: f64) -> Option<String> {
    if !millis.is_finite() {
        return None;
    }
    let secs = (millis / 1000.0).floor();
    let nanos = ((millis - secs * 1000.0) * 1_000_000.0).round() as u32;
    let t = chrono::DateTime::from_timestamp(secs as i64, nanos.min(999_999_999))?;
    Some(lupa_core::format_timestamp(&t))
}

/// A required string argument.
pub fn string_arg(v: Unknown, name: &str) -> TypeResult<String> {
    match to_json(&v, name)? {
        Some(Value::String(s)) => Ok(s),
        None => Err(format!("{name} is required (a string)")),
        Some(other) => Err(format!("{name} must be a string, not {}", json_type(&other))),
    }
}

/// An optional string argument (`undefined` or `null` is none).
pub fn opt_string_arg(v: Unknown, name: &str) -> TypeResult<Option<String>> {
    match to_json(&v, name)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{name} must be a string, not {}", json_type(&other))),
    }
}

/// An optional options object; none for `undefined` or `null`.
pub fn opt_object_arg(v: Unknown, name: &str) -> TypeResult<Fields> {
    match to_json(&v, name)? {
        None | Some(Value::Null) => Ok(Fields::new(name, Map::new())),
        Some(Value::Object(map)) => Ok(Fields::new(name, map)),
        Some(other) => Err(format!("{name} must be an object, not {}", json_type(&other))),
    }
}

/// A required options object.
pub fn object_arg(v: Unknown, name: &str) -> TypeResult<Fields> {
    match to_json(&v, name)? {
        Some(Value::Object(map)) => Ok(Fields::new(name, map)),
        None => Err(format!("{name} is required (an object)")),
        Some(other) => Err(format!("{name} must be an object, not {}", json_type(&other))),
    }
}

/// The JavaScript name of a JSON value's type, for messages.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The fields of an options object, each taken at most once; a field left
/// over is unknown (a TypeError, so a misspelt option never goes unnoticed).
pub struct Fields {
    name: String,
    map: Map<String, Value>,
}

impl Fields {
    pub fn new(name: &str, map: Map<String, Value>) -> Fields {
        Fields { name: name.to_owned(), map }
    }

    fn path(&self, field: &str) -> String {
        format!("{}.{field}", self.name)
    }

    pub fn opt_str(&mut self, field: &str) -> TypeResult<Option<String>> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!("{} must be a string, not {}", self.path(field), json_type(&other))),
        }
    }

    pub fn str(&mut self, field: &str) -> TypeResult<String> {
        let path = self.path(field);
        self.opt_str(field)?.ok_or_else(|| format!("{path} is required (a string)"))
    }

    pub fn opt_bool(&mut self, field: &str) -> TypeResult<Option<bool>> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(format!("{} must be a boolean, not {}", self.path(field), json_type(&other))),
        }
    }

    /// A whole, non-negative number that fits in `u32`.
    pub fn opt_u32(&mut self, field: &str) -> TypeResult<Option<u32>> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .or_else(|| {
                    n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u32::MAX as f64).map(|f| f as u32)
                })
                .map(Some)
                .ok_or_else(|| format!("{} must be a whole number from 0 to {}", self.path(field), u32::MAX)),
            Some(other) => Err(format!("{} must be a number, not {}", self.path(field), json_type(&other))),
        }
    }

    /// A duration in milliseconds (a non-negative finite number).
    pub fn opt_millis(&mut self, field: &str) -> TypeResult<Option<std::time::Duration>> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f <= 1e12)
                .map(|f| Some(std::time::Duration::from_secs_f64(f / 1000.0)))
                .ok_or_else(|| format!("{} must be a number of milliseconds from 0 to 1e12", self.path(field))),
            Some(other) => Err(format!("{} must be a number, not {}", self.path(field), json_type(&other))),
        }
    }

    /// Fails on a field nobody took.
    pub fn finish(self) -> TypeResult<()> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(format!("{} has an unknown field {k:?}", self.name)),
        }
    }
}
