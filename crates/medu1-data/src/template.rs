//! Chat templates: turning a list of messages into the text a model sees.
//!
//! The reference stores prompts already rendered with the Qwen2.5 chat template, and its trainer
//! renders them a second time (spec §1.5). medu1 must therefore render the exact bytes a model's
//! own template produces: either the Jinja `chat_template` shipped with the model
//! (`tokenizer_config.json`, GGUF `tokenizer.chat_template`), rendered with minijinja plus the
//! Python string methods HF templates use, or one of the built-in fallbacks (ChatML for Qwen2.5
//! and SmolLM2, Llama-3) when no template is at hand.

use minijinja::{Environment, ErrorKind, context};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Message {
        Message::new("system", content)
    }
    pub fn user(content: impl Into<String>) -> Message {
        Message::new("user", content)
    }
}

/// Qwen2.5-Instruct's template inserts this system message when the chat has none.
pub const QWEN25_DEFAULT_SYSTEM: &str =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
/// SmolLM2-Instruct's template inserts this system message when the chat has none.
pub const SMOLLM2_DEFAULT_SYSTEM: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

pub use crate::error::TemplateError;

/// A way of rendering messages to model input text.
#[derive(Debug)]
pub enum ChatTemplate {
    /// `<|im_start|>{role}\n{content}<|im_end|>\n` per message, with `default_system` prepended when
    /// the first message is not a system message (Qwen2.5, SmolLM2).
    ChatMl { default_system: Option<String> },
    /// Llama-3 Instruct headers (`<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`).
    Llama3,
    /// A Jinja template as shipped with a model, compiled once.
    Jinja(Box<JinjaTemplate>),
}

/// A compiled HF-style Jinja chat template.
#[derive(Debug)]
pub struct JinjaTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// Qwen2.5-Instruct (ChatML with Qwen's default system prompt). The reference's template.
    pub fn qwen25() -> ChatTemplate {
        ChatTemplate::ChatMl {
            default_system: Some(QWEN25_DEFAULT_SYSTEM.into()),
        }
    }

    /// SmolLM2-Instruct (ChatML with SmolLM's default system prompt).
    pub fn smollm2() -> ChatTemplate {
        ChatTemplate::ChatMl {
            default_system: Some(SMOLLM2_DEFAULT_SYSTEM.into()),
        }
    }

    pub fn llama3() -> ChatTemplate {
        ChatTemplate::Llama3
    }

    /// Compiles a Jinja chat template (HF semantics: `trim_blocks`, `lstrip_blocks`, Python string
    /// methods, `raise_exception`).
    pub fn from_jinja(
        source: &str,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<ChatTemplate, TemplateError> {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()?,
        );
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_template_owned("chat", source.to_string())?;
        Ok(ChatTemplate::Jinja(Box::new(JinjaTemplate {
            env,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        })))
    }

    /// Reads `chat_template` (and `bos_token` / `eos_token`) from a `tokenizer_config.json`, or a
    /// bare Jinja file when the file is not JSON.
    pub fn from_file(path: &Path) -> Result<ChatTemplate, TemplateError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
            path: p.clone(),
            source,
        })?;
        if !text.trim_start().starts_with('{') || path.extension().is_some_and(|e| e == "jinja") {
            return ChatTemplate::from_jinja(&text, "", "");
        }
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| TemplateError::Json {
                path: p.clone(),
                source,
            })?;
        let tok = |k: &str| -> String {
            match v.get(k) {
                Some(serde_json::Value::String(s)) => s.clone(),
                // Older configs store added tokens as objects with a `content` field.
                Some(o) => o
                    .get("content")
                    .and_then(|c| c.as_str())
                    .unwrap_or("")
                    .to_string(),
                None => String::new(),
            }
        };
        let tpl = match v.get("chat_template") {
            Some(serde_json::Value::String(s)) => s.clone(),
            // A list of named templates: take the one called `default`.
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .and_then(|t| t.get("template")?.as_str().map(str::to_string))
                .ok_or(TemplateError::Missing { path: p.clone() })?,
            _ => return Err(TemplateError::Missing { path: p }),
        };
        ChatTemplate::from_jinja(&tpl, &tok("bos_token"), &tok("eos_token"))
    }

    /// Parses a command-line choice: `chatml`/`qwen2.5`, `smollm2`, `llama3`, or a file path.
    pub fn from_name_or_file(name: &str) -> Result<ChatTemplate, TemplateError> {
        match name {
            "chatml" | "qwen" | "qwen2.5" | "qwen25" => Ok(ChatTemplate::qwen25()),
            "smollm2" | "smollm" => Ok(ChatTemplate::smollm2()),
            "llama3" | "llama-3" => Ok(ChatTemplate::llama3()),
            path => ChatTemplate::from_file(Path::new(path)),
        }
    }

    /// Renders `messages`; with `add_generation_prompt` the assistant header is appended.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        match self {
            ChatTemplate::ChatMl { default_system } => {
                let mut out = String::new();
                if let Some(sys) = default_system
                    && messages.first().is_none_or(|m| m.role != "system")
                {
                    push_chatml(&mut out, "system", sys);
                }
                for m in messages {
                    push_chatml(&mut out, &m.role, &m.content);
                }
                if add_generation_prompt {
                    out.push_str("<|im_start|>assistant\n");
                }
                Ok(out)
            }
            ChatTemplate::Llama3 => {
                let mut out = String::from("<|begin_of_text|>");
                for m in messages {
                    out.push_str("<|start_header_id|>");
                    out.push_str(&m.role);
                    out.push_str("<|end_header_id|>\n\n");
                    // Llama-3's template applies `| trim` to every content.
                    out.push_str(m.content.trim());
                    out.push_str("<|eot_id|>");
                }
                if add_generation_prompt {
                    out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
                }
                Ok(out)
            }
            ChatTemplate::Jinja(j) => {
                let t = j.env.get_template("chat")?;
                Ok(t.render(context! {
                    messages => messages_value(messages),
                    add_generation_prompt => add_generation_prompt,
                    bos_token => &j.bos_token,
                    eos_token => &j.eos_token,
                })?)
            }
        }
    }

    /// The training-time double template of spec §1.5: verl applies the tokenizer's template to
    /// `[{"role": "user", "content": content}]` where `content` is already templated.
    pub fn render_training_prompt(&self, content: &str) -> Result<String, TemplateError> {
        self.render(&[Message::user(content)], true)
    }
}

/// Messages as template values (`message.role`, `message['content']`).
fn messages_value(messages: &[Message]) -> minijinja::Value {
    messages
        .iter()
        .map(|m| {
            let mut map = std::collections::BTreeMap::new();
            map.insert("role".to_string(), minijinja::Value::from(m.role.as_str()));
            map.insert(
                "content".to_string(),
                minijinja::Value::from(m.content.as_str()),
            );
            minijinja::Value::from(map)
        })
        .collect::<Vec<_>>()
        .into()
}

fn push_chatml(out: &mut String, role: &str, content: &str) {
    out.push_str("<|im_start|>");
    out.push_str(role);
    out.push('\n');
    out.push_str(content);
    out.push_str("<|im_end|>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Qwen2.5-Instruct's shipped template without the tool-calling branches.
    const QWEN_JINJA: &str = "{%- if messages[0]['role'] == 'system' %}\n    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n{%- else %}\n    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n{%- endif %}\n{%- for message in messages %}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\") %}\n        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n";

    #[test]
    fn builtin_chatml_matches_qwen_jinja() {
        let jinja = ChatTemplate::from_jinja(QWEN_JINJA, "", "<|im_end|>").unwrap();
        let chats = [
            vec![Message::user("hi")],
            vec![
                Message::system("S"),
                Message::user("q"),
                Message::new("assistant", "a"),
            ],
        ];
        for chat in &chats {
            for gen_prompt in [false, true] {
                assert_eq!(
                    jinja.render(chat, gen_prompt).unwrap(),
                    ChatTemplate::qwen25().render(chat, gen_prompt).unwrap()
                );
            }
        }
    }

    #[test]
    fn double_template_matches_spec() {
        let content = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n";
        let got = ChatTemplate::qwen25()
            .render_training_prompt(content)
            .unwrap();
        assert_eq!(
            got,
            format!(
                "<|im_start|>system\n{QWEN25_DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n"
            )
        );
    }

    #[test]
    fn llama3_and_smollm2_and_pycompat() {
        let out = ChatTemplate::llama3()
            .render(&[Message::user(" q ")], true)
            .unwrap();
        assert_eq!(
            out,
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nq<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
        let s = ChatTemplate::smollm2()
            .render(&[Message::user("q")], false)
            .unwrap();
        assert!(s.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"));
        let t = ChatTemplate::from_jinja(
            "{{ bos_token }}{% for m in messages %}{{ m.content.strip().upper() }}{% endfor %}",
            "<s>",
            "",
        )
        .unwrap();
        assert_eq!(t.render(&[Message::user(" ab ")], false).unwrap(), "<s>AB");
        let bad = ChatTemplate::from_jinja("{{ raise_exception('no') }}", "", "").unwrap();
        // The message says what failed; the template's own error is its source.
        let err = bad.render(&[], false).unwrap_err();
        assert_eq!(err.to_string(), "chat template");
        assert!(medu1_core::error::chain(&err).contains("no"));
    }
}
