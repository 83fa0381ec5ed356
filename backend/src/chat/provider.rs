//! Client for an OpenAI-compatible Chat Completions endpoint with tool calling.

use std::time::Duration;

use serde_json::{Value, json};

use crate::config::LlmConfig;

/// A configured provider.
#[derive(Clone)]
pub struct Provider {
    http: reqwest::Client,
    url: String,
    api_key: Option<String>,
    model: String,
    max_response_bytes: usize,
}

/// Why a provider call failed; `Display` is a sentence fit for the user.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No answer within the timeout.
    #[error("the AI provider did not answer in time")]
    Timeout,
    /// Connection refused, DNS failure, TLS failure…
    #[error("the AI provider could not be reached")]
    Unreachable,
    /// A non-success HTTP status.
    #[error("the AI provider answered with an error (HTTP {0})")]
    Status(u16),
    /// A body larger than `LLM_MAX_RESPONSE_BYTES`.
    #[error("the AI provider sent an answer that is too large")]
    TooLarge,
    /// A body that is not a Chat Completions response.
    #[error("the AI provider sent an answer I could not understand")]
    Malformed(String),
}

/// One tool call requested by the model.
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// The call id to echo in the tool result.
    pub id: String,
    /// Tool name (may be unknown or empty when the model misbehaves).
    pub name: String,
    /// Raw JSON text of the arguments.
    pub arguments: String,
}

/// The model's answer for one round.
#[derive(Debug, Clone)]
pub struct Turn {
    /// Text, if any.
    pub content: Option<String>,
    /// Tool calls, possibly none.
    pub tool_calls: Vec<ToolCall>,
}

impl Turn {
    /// The assistant message to append to the transcript before the tool results.
    pub fn as_message(&self) -> Value {
        let calls: Vec<Value> = self
            .tool_calls
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "type": "function",
                    "function": { "name": c.name, "arguments": c.arguments },
                })
            })
            .collect();
        let mut m = json!({ "role": "assistant", "content": self.content });
        if !calls.is_empty() {
            m["tool_calls"] = Value::Array(calls);
        }
        m
    }
}

impl Provider {
    /// A client for `config`.
    pub fn new(config: &LlmConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5).min(config.timeout))
            .build()?;
        Ok(Provider {
            http,
            url: format!("{}/chat/completions", config.base_url),
            api_key: config.api_key.clone(),
            model: config.model.clone(),
            max_response_bytes: config.max_response_bytes,
        })
    }

    /// Sends the transcript and the tool definitions; returns the model's next turn.
    pub async fn complete(&self, messages: &[Value], tools: &Value) -> Result<Turn, ProviderError> {
        let body = json!({
            "model": self.model,
            "messages": messages,
            "tools": tools,
            "tool_choice": "auto",
        });
        let mut req = self.http.post(&self.url).json(&body);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let mut resp = req.send().await.map_err(classify)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ProviderError::Status(status.as_u16()));
        }
        // Read at most max_response_bytes, whatever the server sends or announces.
        let max = self.max_response_bytes;
        if resp
            .content_length()
            .is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX))
        {
            return Err(ProviderError::TooLarge);
        }
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            if e.is_timeout() {
                ProviderError::Timeout
            } else {
                ProviderError::Malformed(format!("body not readable: {e}"))
            }
        })? {
            if body.len() + chunk.len() > max {
                return Err(ProviderError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Malformed(format!("body is not JSON: {e}")))?;
        parse_turn(&value)
    }
}

fn classify(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout
    } else {
        // The error names the URL (never the key, which travels in a header).
        tracing::debug!(error = %e, "provider request failed");
        ProviderError::Unreachable
    }
}

/// Reads `choices[0].message` of a Chat Completions response.
pub fn parse_turn(value: &Value) -> Result<Turn, ProviderError> {
    let message = value
        .get("choices")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("message"))
        .ok_or_else(|| ProviderError::Malformed("no choices[0].message".into()))?;
    let content = message
        .get("content")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let tool_calls = match message.get("tool_calls") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(calls)) => calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let function = c.get("function");
                ToolCall {
                    id: c
                        .get("id")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("call_{i}"), str::to_owned),
                    name: function
                        .and_then(|f| f.get("name"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    arguments: match function.and_then(|f| f.get("arguments")) {
                        Some(Value::String(s)) => s.clone(),
                        // Some servers send an object instead of a JSON string.
                        Some(other @ Value::Object(_)) => other.to_string(),
                        _ => String::new(),
                    },
                }
            })
            .collect(),
        Some(_) => {
            return Err(ProviderError::Malformed(
                "tool_calls is not an array".into(),
            ));
        }
    };
    Ok(Turn {
        content,
        tool_calls,
    })
}
