# ruff: noqa: E501 (the real chat templates below are kept verbatim, long lines and all)
"""Chat-template SSTI and YAML-gadget checks (tensorfile.scan.templates).

Benign: real chat templates (vLLM's examples/ tool templates, Apache-2.0, and the Hugging Face
templates of well-known models as published in their tokenizer_config.json). None may get a
finding above low. Malicious: published Jinja2 sandbox-escape payloads (CVE-2024-34359 and the
usual SSTI cheat-sheet chains, with their obfuscations). Each must get a finding of at least high.
Nothing here is ever rendered: the module only parses.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from typing import Any

import pytest

from tensorfile.errors import FormatError
from tensorfile.scan.findings import Finding, rank
from tensorfile.scan.templates import (
    MAX_PARSE,
    check_template,
    is_template_text,
    scan_json_config,
    scan_text_template,
)

from .conftest import CORPUS


def worst(found: list[Finding]) -> str | None:
    return max((f.severity for f in found), key=rank, default=None)


def at_least(found: list[Finding], level: str) -> bool:
    return any(rank(f.severity) >= rank(level) for f in found)


def rules(found: list[Finding]) -> set[str]:
    return {f.rule for f in found}


# ---------------------------------------------------------------------------------------------
# Benign templates.

HF_DEFAULT_CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

ZEPHYR = r"""{% for message in messages %}
{% if message['role'] == 'user' %}
{{ '<|user|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'system' %}
{{ '<|system|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'assistant' %}
{{ '<|assistant|>\n'  + message['content'] + eos_token }}
{% endif %}
{% if loop.last and add_generation_prompt %}
{{ '<|assistant|>' }}
{% endif %}
{% endfor %}"""

GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)

PHI3 = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + "
    "'<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}"
    "{% endif %}"
)

LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

QWEN25_TOOLS = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

QWEN3 = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools><|im_end|>\n" }}
{%- elif messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}"""

# vLLM examples/tool_chat_template_llama3.1_json.jinja
LLAMA31_TOOLS = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {#- Llama 3.1 doesn't pass all tests if the tools are in the system prompt #}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- if messages[0]['content'] is string %}
        {%- set system_message = messages[0]['content']|trim %}
    {%- else %}
        {%- set system_message = messages[0]['content'][0]['text']|trim %}
    {%- endif %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- if tools is not none %}
        {%- set system_message = "You are a helpful assistant with tool calling capabilities. Only reply with a tool call if the function exists in the library provided by the user. If it doesn't exist, just reply directly in natural language. When you receive a tool call response, use the output to format an answer to the original user question." %}
    {%- else %}
        {%- set system_message = "" %}
    {%- endif %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call. " }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}. ' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- if messages[0]['content'] is string %}
            {%- set first_user_message = messages[0]['content']|trim %}
        {%- else %}
            {%- set first_user_message = messages[0]['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | map('trim') | join('\n') %}
        {%- endif %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
    {%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}. ' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}
        {%- if message['content'] is string %}
            {{- message['content'] | trim}}
        {%- else %}
            {%- for content in message['content'] %}
                {%- if content['type'] == 'text' %}
                    {{- content['text'] | trim }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if message.tool_calls|length > 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- elif message.tool_calls|length == 0 %}
            {{- "No tool calls found." }}
        {%- else %}
            {%- set tool_call = message.tool_calls[0].function %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name|trim + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is string %}
            {{- { "output": message.content } | tojson }}
        {%- else %}
            {%- for content in message['content']  %}
                {%- if content['type']  == 'text' %}
                    {{- { "output": content['text']  } | tojson }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

# vLLM examples/tool_chat_template_llama3.2_pythonic.jinja (tool-call part)
LLAMA32_PYTHONIC = r"""{{- bos_token }}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n[' -}}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- tool_call.name + '(' -}}
            {%- for param in tool_call.arguments %}
                {{- param + '=' -}}
                {{- "%s" | format(tool_call.arguments[param]) -}}
                {% if not loop.last %}, {% endif %}
            {%- endfor %}
            {{- ')' -}}
            {% if not loop.last %}, {% endif %}
        {%- endfor %}
        {{- ']<|eot_id|>' -}}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping %}
            {{- message.content | tojson }}
        {%- else %}
            {{- { "output": message.content } | tojson }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

# vLLM examples/tool_chat_template_mistral3.jinja (Mistral v3 tool calls)
MISTRAL_TOOLS = r"""{%- set today = strftime_now("%Y-%m-%d") %}
{%- set default_system_message = "You are Mistral Small 3, a Large Language Model (LLM) created by Mistral AI, a French startup headquartered in Paris.\nYour knowledge base was last updated on 2023-10-01. The current date is " + today + ".\n\nWhen you're not sure about some information, you say that you don't have the information and don't make up anything." %}

{{- bos_token }}

{%- if messages[0]['role'] == 'system' %}
    {%- if messages[0]['content'] is string %}
        {%- set system_message = messages[0]['content'] %}
        {%- set loop_messages = messages[1:] %}
    {%- else %}
        {%- set system_message = messages[0]['content'][0]['text'] %}
        {%- set loop_messages = messages[1:] %}
    {%- endif %}
{%- else %}
    {%- set system_message = default_system_message %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- elif tools is not none %}
    {%- set parallel_tool_prompt = "You are a helpful assistant that can call tools. Use the format [{\"name\": tool call name, \"arguments\": tool call arguments}, additional tool calls] if you call more than one tool." %}
    {%- if system_message is defined %}
        {%- set system_message = parallel_tool_prompt + "\n\n" + system_message %}
    {%- else %}
        {%- set system_message = parallel_tool_prompt %}
    {%- endif %}
{%- endif %}
{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}

{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{%- set filtered_messages = [] %}
{%- for message in loop_messages %}
    {%- if message["role"] not in ["tool", "tool_results"] and not message.get("tool_calls") %}
        {%- set filtered_messages = filtered_messages + [message] %}
    {%- endif %}
{%- endfor %}

{%- for message in loop_messages | rejectattr("role", "equalto", "tool") | rejectattr("role", "equalto", "tool_results") | selectattr("tool_calls", "undefined") %}
    {%- if (message["role"] == "user") != (loop.index0 % 2 == 0) %}
        {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif %}
{%- endfor %}

{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
        {%- endif %}
        {%- if message['content'] is string %}
        {{- '[INST]' + message['content'] + '[/INST]' }}
        {%- else %}
                {{- '[INST]' }}
                {%- for block in message['content'] %}
                        {%- if block['type'] == 'text' %}
                                {{- block['text'] }}
                        {%- elif block['type'] == 'image' or block['type'] == 'image_url' %}
                                {{- '[IMG]' }}
                            {%- else %}
                                {{- raise_exception('Only text and image blocks are supported in message content!') }}
                            {%- endif %}
                    {%- endfor %}
                {{- '[/INST]' }}
            {%- endif %}
    {%- elif message["role"] == "tool_calls" or message.tool_calls is defined %}
        {%- if message.tool_calls is defined %}
            {%- set tool_calls = message.tool_calls %}
        {%- else %}
            {%- set tool_calls = message.content %}
        {%- endif %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length < 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length >= 9! (1)" + tool_call.id) }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id[-9:] + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message['role'] == 'assistant' %}
        {%- if message['content'] is string %}
            {{- message['content'] + eos_token }}
        {%- else %}
            {{- message['content'][0]['text'] + eos_token }}
        {%- endif %}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length < 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length >= 9! (2)" + message.tool_call_id) }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id[-9:] + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
"""

# vLLM examples/tool_chat_template_hermes.jinja (macro, |items, dict literal)
HERMES_TOOLS = r"""{%- macro json_to_python_type(json_spec) %}
    {%- set basic_type_map = {
    "string": "str",
    "number": "float",
    "integer": "int",
    "boolean": "bool"
} %}

    {%- if basic_type_map[json_spec.type] is defined %}
        {{- basic_type_map[json_spec.type] }}
    {%- elif json_spec.type == "array" %}
        {{- "list[" +  json_to_python_type(json_spec|items) + "]" }}
    {%- elif json_spec.type == "object" %}
        {%- if json_spec.additionalProperties is defined %}
            {{- "dict[str, " + json_to_python_type(json_spec.additionalProperties) + ']' }}
        {%- else %}
            {{- "dict" }}
        {%- endif %}
    {%- elif json_spec.type is iterable %}
        {{- "Union[" }}
        {%- for t in json_spec.type %}
            {{- json_to_python_type({"type": t}) }}
            {%- if not loop.last %}
                {{- "," }}
            {%- endif %}
        {%- endfor %}
        {{- "]" }}
    {%- else %}
        {{- "Any" }}
    {%- endif %}
{%- endmacro %}

{{- bos_token }}
{%- if tools is iterable and tools | length > 0 %}
    {{- "You are a function calling AI model. Here are the available tools: <tools> " }}
    {%- for tool in tools %}
        {%- if tool.function is defined %}
            {%- set tool = tool.function %}
        {%- endif %}
        {{- '{"type": "function", "function": ' }}
        {{- '{"name": "' + tool.name + '", ' }}
        {{- '"description": "' + tool.name + '(' }}
        {%- for param_name, param_fields in tool.parameters.properties|items %}
            {{- param_name + ": " + json_to_python_type(param_fields) }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- endif %}
        {%- endfor %}
        {{- ")" }}
        {%- if tool.return is defined %}
            {{- " -> " + json_to_python_type(tool.return) }}
        {%- endif %}
        {{- " - " + tool.description + "\n\n" }}
        {%- for param_name, param_fields in tool.parameters.properties|items %}
            {%- if loop.first %}
                {{- "    Args:\n" }}
            {%- endif %}
            {{- "        " + param_name + "(" + json_to_python_type(param_fields) + "): " + param_fields.description|trim }}
        {%- endfor %}
        {%- if tool.return is defined and tool.return.description is defined %}
            {{- "\n    Returns:\n        " + tool.return.description }}
        {%- endif %}
        {{- '"' }}
        {{- ', "parameters": ' }}
        {%- if tool.parameters.properties | length == 0 %}
            {{- "{}" }}
        {%- else %}
            {{- tool.parameters|tojson }}
        {%- endif %}
        {{- "}" }}
        {%- if not loop.last %}
            {{- "\n" }}
        {%- endif %}
    {%- endfor %}
    {{- " </tools>" }}
    {{- '<tool_call>\n{"name": <function-name>, "arguments": <args-dict>}\n</tool_call><|im_end|>' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == "user" or message.role == "system" or (message.role == "assistant" and message.tool_calls is not defined) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role  }}
        {%- for tool_call in message.tool_calls %}
            {{- '\n<tool_call>\n' }}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '{ ' }}
            {%- if tool_call.arguments is defined %}
                {{- '"arguments": ' }}
                {{- tool_call.arguments|tojson }}
                {{- ', ' }}
            {%- endif %}
            {{- '"name": "' }}
            {{- tool_call.name }}
            {{- '"}' }}
            {{- '\n</tool_call> ' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if not message.name is defined %}
            {{- raise_exception("Tool response dicts require a 'name' key indicating the name of the called function!") }}
        {%- endif %}
        {{- '<|im_start|>' + message.role + '\n<tool_response>\n' }}
        {{- '{"name": "' }}
        {{- message.name }}
        {{- '", "content": ' }}
        {{- message.content|tojson + '}' }}
        {{- '\n</tool_response> <|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

# vLLM examples/tool_chat_template_deepseekr1.jinja (namespace(), implicit string concatenation)
DEEPSEEK_R1 = r"""{% if not add_generation_prompt is defined %}
    {% set add_generation_prompt = false %}
{% endif %}
{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true, is_last_user=false) %}
{%- for message in messages %}
    {%- if message['role'] == 'system' %}
        {%- if ns.is_first_sp %}
            {% set ns.system_prompt = ns.system_prompt + message['content'] %}
            {% set ns.is_first_sp = false %}
        {%- else %}
            {% set ns.system_prompt = ns.system_prompt + '\n\n' + message['content'] %}
        {%- endif %}
    {%- endif %}
{%- endfor -%}
{% if tools is defined and tools is not none %}
    {% set tool_ns = namespace(text='You are a helpful assistant with tool calling capabilities. '
        'When a tool call is needed, you MUST use the following format to issue the call:\n'
        '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>FUNCTION_NAME\n'
        '```json\n{"param1": "value1", "param2": "value2"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>\n\n'
        'Make sure the JSON is valid.'
        '## Tools\n\n### Function\n\nYou have the following functions available:\n\n') %}
    {% for tool in tools %}
        {% set tool_ns.text = tool_ns.text + '\n```json\n' + (tool | tojson) + '\n```\n' %}
    {% endfor %}
    {% set ns.system_prompt = ns.system_prompt + '\n\n' + tool_ns.text %}
{% endif %}
{{- bos_token }}
{{- ns.system_prompt }}
{%- for message in messages %}
    {% set content = message['content'] %}
    {%- if message['role'] == 'user' %}
        {%- set ns.is_tool = false -%}
        {%- set ns.is_first = false -%}
        {%- set ns.is_last_user = true -%}
        {{'<｜User｜>' + content + '<｜Assistant｜>'}}
    {%- endif %}
    {%- if message['role'] == 'assistant' %}
        {% if '</think>' in content %}
            {% set content = content.split('</think>')[-1] %}
        {% endif %}
    {% endif %}
    {%- if message['role'] == 'assistant' and message['tool_calls'] is defined and message['tool_calls'] is not none %}
        {%- set ns.is_last_user = false -%}
        {%- if ns.is_tool %}
            {{'<｜tool▁outputs▁end｜>'}}
        {%- endif %}
        {%- set ns.is_first = false %}
        {%- set ns.is_tool = false -%}
        {%- set ns.is_output_first = true %}
        {%- for tool in message['tool_calls'] %}
            {%- if not ns.is_first %}
                {%- if content is none %}
                    {{'<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments']|tojson + '\n' + '```' + '<｜tool▁call▁end｜>'}}
                {%- else %}
                    {{content + '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments']|tojson + '\n' + '```' + '<｜tool▁call▁end｜>'}}
                {%- endif %}
                {%- set ns.is_first = true -%}
            {%- else %}
                {{'\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments']|tojson + '\n' + '```' + '<｜tool▁call▁end｜>'}}
            {%- endif %}
        {%- endfor %}
        {{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}
    {%- endif %}
    {%- if message['role'] == 'assistant' and (message['tool_calls'] is not defined or message['tool_calls'] is none)%}
        {%- set ns.is_last_user = false -%}
        {%- if ns.is_tool %}
            {{'<｜tool▁outputs▁end｜>' + content + '<｜end▁of▁sentence｜>'}}
            {%- set ns.is_tool = false -%}
        {%- else %}
            {{- content + '<｜end▁of▁sentence｜>'}}
        {%- endif %}
    {%- endif %}
    {%- if message['role'] == 'tool' %}
        {%- set ns.is_last_user = false -%}
        {%- set ns.is_tool = true -%}
        {%- if ns.is_output_first %}
            {{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + content + '<｜tool▁output▁end｜>'}}
            {%- set ns.is_output_first = false %}
        {%- else %}
            {{'\n<｜tool▁output▁begin｜>' + content + '<｜tool▁output▁end｜>'}}
        {%- endif %}
    {%- endif %}
{%- endfor -%}
{% if ns.is_tool %}
    {{'<｜tool▁outputs▁end｜>'}}
{% endif %}
{% if add_generation_prompt and not ns.is_last_user and not ns.is_tool %}
    {{- '<｜Assistant｜>'}}
{%- endif %}"""

# vLLM examples/tool_chat_template_gemma3_pythonic.jinja (main loop)
GEMMA3_TOOLS = r"""{#- Begin-of-sequence token to start the model prompt -#}
{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- for message in loop_messages | rejectattr("role", "equalto", "tool") | selectattr("tool_calls", "undefined") -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
{%- endfor -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- elif (message['role'] == 'tool') -%}
        {%- set role = "user" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' -}}
    {%- if loop.first -%}
        {{ first_user_prefix }}
        {%- if tools is not none -%}
            {{- "Tools (functions) are available. If you decide to invoke one or more of the tools, you must respond with a python list of the function calls.\n" -}}
            {{- tools | tojson(indent=4) -}}
            {{- "\n\n" -}}
        {%- endif -%}
    {%- endif -%}
    {%- if 'tool_calls' in message -%}
        {{- '[' -}}
        {%- for tool_call in message.tool_calls -%}
            {%- if tool_call.function is defined -%}
                {%- set tool_call = tool_call.function -%}
            {%- endif -%}
            {{- tool_call.name + '(' -}}
            {%- if tool_call.arguments is iterable and tool_call.arguments is mapping -%}
                {%- set first = true -%}
                {%- for key, val in tool_call.arguments.items() -%}
                    {%- if not first %}, {% endif -%}
                    {{ key }}={{ val | tojson }}
                    {%- set first = false -%}
                {%- endfor -%}
            {%- elif tool_call.arguments is iterable -%}
                {{- tool_call.arguments | map('tojson') | join(', ') -}}
            {%- else -%}
                {{- tool_call.arguments | tojson -}}
            {%- endif -%}
                {{- ')' -}}
            {%- if not loop.last -%}, {% endif -%}
        {%- endfor -%}
        {{- ']' -}}
    {%- endif -%}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}"""

# vLLM examples/tool_chat_template_qwen3coder.jinja (macro with ~, |safe, loop.previtem)
QWEN3_CODER = r"""{% macro render_extra_keys(json_dict, handled_keys) %}
    {%- if json_dict is mapping %}
        {%- for json_key in json_dict if json_key not in handled_keys %}
            {%- if json_dict[json_key] is mapping or (json_dict[json_key] is sequence and json_dict[json_key] is not string) %}
                {{- '\n<' ~ json_key ~ '>' ~ (json_dict[json_key] | tojson | safe) ~ '</' ~ json_key ~ '>' }}
            {%- else %}
                {{-'\n<' ~ json_key ~ '>' ~ (json_dict[json_key] | string) ~ '</' ~ json_key ~ '>' }}
            {%- endif %}
        {%- endfor %}
    {%- endif %}
{% endmacro %}
{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = [] %}
{%- endif %}
{%- if tools is iterable and tools | length > 0 %}
    {{- "<tools>" }}
    {%- for tool in tools %}
        {%- if tool.function is defined %}
            {%- set tool = tool.function %}
        {%- endif %}
        {{- "\n<function>\n<name>" ~ tool.name ~ "</name>" }}
        {%- if tool.parameters is defined and tool.parameters is mapping and tool.parameters.properties is defined and tool.parameters.properties is mapping %}
            {%- for param_name, param_fields in tool.parameters.properties|items %}
                {{- '\n<name>' ~ param_name ~ '</name>' }}
                {%- if param_fields.type is defined %}
                    {{- '\n<type>' ~ (param_fields.type | string) ~ '</type>' }}
                {%- endif %}
                {%- set handled_keys = ['name', 'type', 'description'] %}
                {{- render_extra_keys(param_fields, handled_keys) }}
            {%- endfor %}
        {%- endif %}
        {{- '\n</function>' }}
    {%- endfor %}
    {{- "\n</tools>" }}
{%- endif %}
{%- for message in loop_messages %}
    {%- if message.role == "assistant" and message.tool_calls is defined and message.tool_calls is iterable and message.tool_calls | length > 0 %}
        {{- '<|im_start|>' + message.role }}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n<function=' + tool_call.name + '>\n' }}
            {%- if tool_call.arguments is defined %}
                {%- for args_name, args_value in tool_call.arguments|items %}
                    {{- '<parameter=' + args_name + '>\n' }}
                    {%- set args_value = args_value | tojson | safe if args_value is mapping or (args_value is sequence and args_value is not string) else args_value | string %}
                    {{- args_value }}
                    {{- '\n</parameter>\n' }}
                {%- endfor %}
            {%- endif %}
            {{- '</function>\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.previtem and loop.previtem.role != "tool" %}
            {{- '<|im_start|>user\n' }}
        {%- endif %}
        {{- '<tool_response>\n' }}
        {{- message.content }}
        {%- if not loop.last and loop.nextitem.role != "tool" %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- else %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

# transformers' assistant-mask tag and loop controls, as in training templates.
GENERATION_TAG = (
    "{% for message in messages %}{% if message['role'] == 'system' and loop.first %}{% continue %}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}{% if message['role'] == 'assistant' %}{% generation %}"
    "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{% else %}{{ message['content'] + '<|im_end|>' }}"
    "{% endif %}{% if loop.index > 100 %}{% break %}{% endif %}{% endfor %}"
)

# Python-ish templates that still are benign: format strings, dict(), namespace(), cycler(), etc.
BENIGN_IDIOMS = (
    "{% set ns = namespace(found=false, parts=[]) %}{% set c = cycler('odd', 'even') %}"
    "{% set roles = dict(user='User', assistant='Assistant', system='System') %}"
    "{% for m in messages %}{{ c.next() }}{{ roles[m.role] ~ ': ' ~ m.content|default('')|trim }}"
    "{{ '%s (%d)'|format(m.role, loop.index) }}{{ '{}: {}'.format(m.role, m.content) }}"
    "{% if m.role|lower == 'system'|lower %}{% set ns.found = true %}{% endif %}{% endfor %}"
    "{{ messages|map(attribute='content')|join('\\n') }}{{ messages|selectattr('role', 'equalto', 'user')|list|length }}"
    "{{ range(3)|list }}{{ (messages|last).content[:20] }}{{ tools|sort(attribute='name')|map(attribute='name')|join(', ') }}"
    "{{ messages|groupby('role')|list|length }}{{ lipsum(1) if false }}{% if system is defined %}{{ system }}{% endif %}"
)

BENIGN: dict[str, str] = {
    "hf-default-chatml": HF_DEFAULT_CHATML,
    "zephyr": ZEPHYR,
    "gemma": GEMMA,
    "phi-3": PHI3,
    "llama-2": LLAMA2,
    "qwen2.5-tools": QWEN25_TOOLS,
    "qwen3": QWEN3,
    "llama-3.1-tools": LLAMA31_TOOLS,
    "llama-3.2-pythonic": LLAMA32_PYTHONIC,
    "mistral-v3-tools": MISTRAL_TOOLS,
    "hermes-tools": HERMES_TOOLS,
    "deepseek-r1": DEEPSEEK_R1,
    "gemma-3-tools": GEMMA3_TOOLS,
    "qwen3-coder": QWEN3_CODER,
    "generation-tag": GENERATION_TAG,
    "benign-idioms": BENIGN_IDIOMS,
}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_template_is_clean(name: str) -> None:
    found = check_template(BENIGN[name], name)
    assert not at_least(found, "medium"), [(f.rule, f.severity, f.evidence) for f in found]


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_template_in_tokenizer_config(name: str) -> None:
    config = {
        "add_bos_token": True,
        "bos_token": {"content": "<s>", "lstrip": False},
        "chat_template": BENIGN[name],
        "model_max_length": 1000000000000000019884624838656,
        "tokenizer_class": "LlamaTokenizer",
    }
    found = scan_json_config(json.dumps(config).encode(), "tokenizer_config.json")
    assert not at_least(found, "medium"), [(f.rule, f.severity, f.evidence) for f in found]
    found = scan_text_template(BENIGN[name].encode(), "chat_template.jinja")
    assert not at_least(found, "medium"), [(f.rule, f.severity, f.evidence) for f in found]


# ---------------------------------------------------------------------------------------------
# Malicious templates: published payloads and their obfuscations.

B64_PAYLOAD = base64.b64encode(b"__import__('os').system('id')").decode()
HEX_PAYLOAD = b"__import__('os').popen('id').read()".hex()

MALICIOUS: dict[str, str] = {
    # CVE-2024-34359 (llama-cpp-python), as published
    "cve-2024-34359": "{% for c in [].__class__.__base__.__subclasses__() %}{% if c.__name__ == 'catch_warnings' %}"
    "{{ c()._module.__builtins__['__import__']('os').system('touch /tmp/retr0reg') }}{% endif %}{% endfor %}",
    "mro-subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "mro-call": "{{ ''.__class__.mro()[1].__subclasses__()[40]('/etc/passwd').read() }}",
    "cycler-globals": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "joiner-globals": "{{ joiner.__init__.__globals__.os.popen('id').read() }}",
    "namespace-globals": "{{ namespace.__init__.__globals__.os.popen('id').read() }}",
    "lipsum-globals": "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "lipsum-globals-items": "{{ lipsum['__globals__']['os']['popen']('id') }}",
    "self-init": "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}",
    "self-context": "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('id').read() }}",
    "url-for": "{{ url_for.__globals__.os.popen('id').read() }}",
    "flashed": "{{ get_flashed_messages.__globals__.__builtins__.open('/etc/passwd').read() }}",
    "config-items": "{{ config.items() }}",
    "request-application": "{{ request.application.__globals__.__builtins__.__import__('os').popen('id').read() }}",
    "request-attr-plain": "{{ request|attr('application') }}",
    "attr-hex-escapes": "{{ lipsum|attr('\\x5f\\x5fglobals\\x5f\\x5f') }}",
    "attr-unicode-escapes": "{{ ()|attr('\\u005f\\u005fclass\\u005f\\u005f') }}",
    "item-octal-escapes": "{{ ''['\\137\\137class\\137\\137'] }}",
    "request-attr-chain": "{{ request|attr('application')|attr('\\x5f\\x5fglobals\\x5f\\x5f')"
    "|attr('\\x5f\\x5fgetitem\\x5f\\x5f')('\\x5f\\x5fbuiltins\\x5f\\x5f')|attr('\\x5f\\x5fgetitem\\x5f\\x5f')"
    "('\\x5f\\x5fimport\\x5f\\x5f')('os')|attr('popen')('id')|attr('read')() }}",
    "dict-join": "{% set a = dict(__cla=1, ss__=1)|join %}{{ ()|attr(a) }}",
    "list-join": "{{ ()|attr(['_'*2, 'class', '_'*2]|join) }}",
    "method-join": "{{ ()|attr(''.join(['__', 'class', '__'])) }}",
    "concat-tilde": "{% set u = '_' * 2 %}{{ cycler|attr(u ~ 'init' ~ u) }}",
    "concat-plus-item": "{{ ''['__cla' + 'ss__'] }}",
    "percent-c": "{% set pc = '%c'|format(95) %}{% set u = pc * 2 %}{{ ()|attr(u ~ 'class' ~ u) }}",
    "percent-c-many": "{{ ()|attr('%c%cclass%c%c'|format(95, 95, 95, 95)) }}",
    "percent-operator": "{{ ()|attr('%c%cclass%c%c' % (95, 95, 95, 95)) }}",
    "brace-format-c": "{{ ()|attr('{0:c}{0:c}class{0:c}{0:c}'.format(95)) }}",
    "brace-format-str": "{{ ()|attr('{0}{0}class{0}{0}'.format('_')) }}",
    "reverse": "{{ ''|attr('__ssalc__'|reverse) }}",
    "slice-reverse": "{{ ''|attr('__ssalc__'[::-1]) }}",
    "replace": "{{ ''|attr('XXclassXX'|replace('X', '_')) }}",
    "chr-join": "{{ ()|attr([chr(95), chr(95), 'class', chr(95), chr(95)]|join) }}",
    "constructed-os": "{% set m = 'o' ~ 's' %}{{ x|attr(m) }}",
    "format-field-attribute": "{{ '{0.__class__.__mro__}'.format(messages) }}",
    "format-field-plain-attribute": "{{ '{0.application}'.format(request) }}",
    "lipsum-string-harvest": "{% set u = (lipsum|string|list)[18] %}{{ u }}",
    "select-string-harvest": "{% set u = (()|select|string)[24] %}{{ u }}",
    "dynamic-attr": "{% set x = cycler %}{{ x|attr(request.args.name) }}",
    "dynamic-attr-variable": "{% for m in messages %}{{ m|attr(m.key) }}{% endfor %}",
    "map-attribute-dunder": "{{ messages|map(attribute='__class__')|list }}",
    "map-attr-filter": "{{ messages|map('attr', '__class__')|list }}",
    "selectattr-dotted": "{{ messages|selectattr('__class__.__mro__')|list }}",
    "sort-attribute": "{{ messages|sort(attribute='__class__') }}",
    "getattribute": "{{ messages.__getattribute__('__class__') }}",
    "getattr-builtin": "{{ getattr(getattr('', '__class__'), '__mro__') }}",
    "eval-builtin": "{{ eval('1+1') }}",
    "open-builtin": "{{ open('/etc/passwd').read() }}",
    "import-name": "{{ __import__('os').system('id') }}",
    "builtins-name": "{{ __builtins__['eval']('1') }}",
    "base64-filter": "{{ '" + B64_PAYLOAD + "'|b64decode }}",
    "base64-in-call": "{{ x.decode('" + B64_PAYLOAD + "') }}",
    "hex-filter": "{{ '" + HEX_PAYLOAD + "'|unhex }}",
    "include-passwd": "{% include '/etc/passwd' %}",
    "include-traversal": "{% import '../../secrets.j2' as s %}",
    "dict-base": "{{ dict.__base__.__subclasses__() }}",
    "namespace-value": "{% set ns = namespace(g=cycler.__init__.__globals__) %}{{ ns.g.os.popen('id').read() }}",
    "nested-constant-names": "{% set a = '__' %}{% set b = a ~ 'globals' ~ a %}{{ lipsum|attr(b) }}",
    "with-block": "{% with a = '__cla' ~ 'ss__' %}{{ ''|attr(a) }}{% endwith %}",
    "print-statement": '{%with a=request|attr("application")|attr("\\x5f\\x5fglobals\\x5f\\x5f")'
    '|attr("\\x5f\\x5fgetitem\\x5f\\x5f")("\\x5f\\x5fbuiltins\\x5f\\x5f")%}{%print(a)%}{%endwith%}',
    "unclosed-loop": "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}",
    "frame-walk": "{{ (x for x in []).gi_frame.f_back.f_globals }}",
    "module-attribute": "{{ x._module.os.system('id') }}",
    "sys-modules": "{{ foo.sys.modules['os'].popen('id') }}",
    "chars-from-codes": '{{ "%c%c%c%c%c%c%c%c%c"|format(95,95,99,108,97,115,115,95,95) }}',
    "dunder-keyword": "{{ dict(__class__=1) }}",
    "set-block-name": "{% set x %}__class__{% endset %}{{ ''[x] }}",
    "set-block-split": "{% set a %}__cla{% endset %}{% set b %}ss__{% endset %}{{ ''[a ~ b] }}",
    "macro-text-name": "{% macro n() %}__globals__{% endmacro %}{{ x[n()] }}",
    "benign-looking-with-payload": HF_DEFAULT_CHATML + "{{ cycler.__init__.__globals__.os.system('id') }}",
}


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_malicious_template_is_flagged(name: str) -> None:
    found = check_template(MALICIOUS[name], name)
    assert at_least(found, "high"), (name, [(f.rule, f.severity, f.evidence) for f in found])


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_malicious_template_in_tokenizer_config(name: str) -> None:
    config = {"tokenizer_class": "LlamaTokenizer", "chat_template": MALICIOUS[name]}
    found = scan_json_config(json.dumps(config).encode(), "tokenizer_config.json")
    assert at_least(found, "high"), [(f.rule, f.severity) for f in found]
    assert all(f.location.startswith("tokenizer_config.json › chat_template") for f in found)


def test_findings_name_the_rule_and_evidence() -> None:
    found = check_template(MALICIOUS["cycler-globals"], "tokenizer_config.json › chat_template")
    by_rule = {f.rule: f for f in found}
    assert by_rule["template-dunder-access"].severity == "critical"
    assert "__globals__" in by_rule["template-dunder-access"].evidence
    assert by_rule["template-global-escape"].severity == "critical"
    assert "cycler" in by_rule["template-global-escape"].evidence
    assert by_rule["template-dangerous-attribute"].evidence.endswith("popen")
    assert by_rule["template-dunder-access"].location == "tokenizer_config.json › chat_template, line 1"
    for f in found:
        assert f.message and f.advice
        assert f.rule.startswith("template-")


def test_obfuscations_are_named() -> None:
    assert "template-constructed-name" in rules(check_template(MALICIOUS["dict-join"], ""))
    assert "template-char-construction" in rules(check_template(MALICIOUS["percent-c"], ""))
    assert "template-escaped-name" in rules(check_template(MALICIOUS["attr-hex-escapes"], ""))
    assert "template-char-harvest" in rules(check_template(MALICIOUS["lipsum-string-harvest"], ""))
    assert "template-encoded-payload" in rules(check_template(MALICIOUS["base64-filter"], ""))
    assert "template-decode-filter" in rules(check_template(MALICIOUS["hex-filter"], ""))
    assert "template-dynamic-attribute" in rules(check_template(MALICIOUS["dynamic-attr"], ""))
    assert "template-format-attribute" in rules(check_template(MALICIOUS["format-field-plain-attribute"], ""))
    # the constant folded through {% set %} reaches the attribute check itself
    found = {f.rule: f for f in check_template(MALICIOUS["dict-join"], "")}
    assert found["template-dunder-access"].severity == "critical"
    unparsed = rules(check_template(MALICIOUS["unclosed-loop"], ""))
    assert {"template-unparseable", "template-dunder-access"} <= unparsed


def test_one_finding_per_rule_with_the_longest_chain() -> None:
    found = check_template("{{ ''.__class__.__mro__[1].__subclasses__() }}", "")
    dunder = [f for f in found if f.rule == "template-dunder-access"]
    assert len(dunder) == 1
    assert dunder[0].evidence == "''.__class__.__mro__[1].__subclasses__"


def test_local_variables_shadow_globals() -> None:
    # a template's own `config` / `request` variables are not Flask's
    text = "{% set config = {'a': 1} %}{% for request in messages %}{{ config.a }}{{ request.content }}{% endfor %}"
    assert not at_least(check_template(text, ""), "medium")
    # self.<block> is normal Jinja
    assert check_template("{% block body %}x{% endblock %}{{ self.body() }}", "") == []


def test_harmless_constants_stay_clean() -> None:
    benign = [
        "{{ 'System'|lower }}",  # a plain word, lower-cased
        "{{ '<|' ~ 'system' ~ '|>' }}",
        "{{ message['content'][::-1] }}",
        "{{ '%s: %s'|format(m.role, m.content) }}",
        "{{ 'Tokens: \\u2581 and \\n' }}",
        "{{ 'abcdefghijklmnopqrstuvwxyz0123456789' }}",  # base64-looking, decodes to noise
        "{{ tool_call_arguments_json_schema }}",
        '{%- set sentinel = "__NOT_A_NUMBER__" -%}{{ x if x != sentinel }}',  # torch inductor's templates
        "{{ 'Example:\\n    if __name__ == \\'__main__\\':\\n        main()' }}",  # quoted code in a prompt
        "{% if message.role == 'system' %}{{ message['system'] }}{% endif %}",
    ]
    for text in benign:
        assert not at_least(check_template(text, ""), "medium"), text


# ---------------------------------------------------------------------------------------------
# JSON configs.


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def test_chat_template_list_form() -> None:
    config = {
        "chat_template": [
            {"name": "default", "template": HF_DEFAULT_CHATML},
            {"name": "tool_use", "template": MALICIOUS["cycler-globals"]},
        ]
    }
    found = scan_json_config(_json(config), "tokenizer_config.json")
    assert worst(found) == "critical"
    assert all("chat_template[1].template (tool_use)" in f.location for f in found)


def test_templates_elsewhere_in_json() -> None:
    config = {
        "model_type": "x",
        "prompts": {"qa": "Q: {{ question }}", "evil": "{{ lipsum.__globals__.os }}"},
    }
    found = scan_json_config(_json(config), "config.json")
    assert worst(found) == "critical"
    assert all("prompts.evil" in f.location for f in found)


def test_duplicate_keys_are_all_checked() -> None:
    data = b'{"chat_template": "' + MALICIOUS["mro-subclasses"].encode() + b'", "chat_template": "hello"}'
    assert worst(scan_json_config(data, "tokenizer_config.json")) == "critical"


def test_json_unicode_escapes_do_not_hide_a_template() -> None:
    data = b'{"chat_templat\\u0065": "\\u007b\\u007b cycler.\\u005f_init__ }}"}'
    assert worst(scan_json_config(data, "tokenizer_config.json")) == "critical"


def test_tokenizer_vocab_with_braces_is_clean() -> None:
    tokenizer = {
        "model": {
            "type": "BPE",
            "vocab": {"{{": 1, "}}": 2, "{%": 3, "%}": 4, "{{ }}": 5, "Ġ{{": 6},
            "merges": ["{ {", "} }", "{{ }}", "{% %}", "{{ {"],
        },
        "added_tokens": [{"id": 7, "content": "{{"}, {"id": 8, "content": "%}"}],
    }
    assert scan_json_config(_json(tokenizer), "tokenizer.json") == []


def test_json_not_a_dict_and_other_shapes() -> None:
    assert scan_json_config(b"[1, 2, 3]", "a.json") == []
    assert scan_json_config(b'"plain"', "a.json") == []
    assert scan_json_config(b"null", "a.json") == []
    assert worst(scan_json_config(_json(["{{ cycler.__init__ }}"]), "a.json")) == "critical"
    assert worst(scan_json_config(_json("{{ cycler.__init__ }}"), "a.json")) == "critical"
    assert scan_json_config(b"", "a.json") == []


def test_json_lines() -> None:
    data = b'{"text": "{{ a }}"}\n{"text": "{{ lipsum.__globals__ }}"}\n'
    assert worst(scan_json_config(data, "data.json")) == "critical"


def test_invalid_json_is_searched_as_text() -> None:
    data = b'{"chat_template": "{{ cycler.__init__.__globals__.os.popen(\'id\') }}", oops'
    found = scan_json_config(data, "tokenizer_config.json")
    assert "template-json-unreadable" in rules(found)
    assert worst(found) == "critical"
    found = scan_json_config(b'{"a": "{{ x }}", oops', "x.json")
    assert [f.rule for f in found] == ["template-json-unreadable"]


def test_template_files_sent_to_the_json_check() -> None:
    # a .j2 file starts with "{%" just like JSON starts with "{": it is still checked as a template
    assert scan_json_config(QWEN25_TOOLS.encode(), "chat_template.jinja") == []
    found = scan_json_config(MALICIOUS["dict-join"].encode(), "chat_template.jinja")
    assert worst(found) == "critical"
    assert "template-json-unreadable" not in rules(found)


def test_invalid_utf8_and_utf16() -> None:
    data = b'{"chat_template": "\xff\xfe{{ cycler.__init__ }}\xc3"}'
    assert worst(scan_json_config(data, "t.json")) == "critical"
    data16 = json.dumps({"chat_template": "{{ cycler.__init__ }}"}).encode("utf-16")
    assert worst(scan_json_config(data16, "t.json")) == "critical"
    assert worst(scan_text_template(b"\xc3\x00\xff{{ ''.__class__ }}\xc3\x28", "t.j2")) == "critical"


def test_deeply_nested_json() -> None:
    deep = b'{"chat_template": "{{ x }}", "a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    found = scan_json_config(deep, "deep.json")
    assert [f.rule for f in found] == ["template-json-unreadable"]
    assert scan_json_config(b"[" * 200_000, "deep.json") == []  # nothing template-like at all
    # deep but readable: walked without recursion
    nested: Any = "{{ cycler.__init__ }}"
    for _ in range(900):
        nested = {"a": nested}
    assert worst(scan_json_config(_json(nested), "nested.json")) == "critical"


def test_deeply_nested_template() -> None:
    text = "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"
    found = check_template(text, "")
    assert rules(found) == {"template-unparseable"}
    text = "{{ " + "(" * 5000 + "''.__class__" + ")" * 5000 + " }}"
    assert worst(check_template(text, "")) == "critical"
    text = "{% if a %}" * 3000 + "{% endif %}" * 3000
    assert all(isinstance(f, Finding) for f in check_template(text, ""))


def test_huge_template_is_searched_not_parsed() -> None:
    big = "{{ message }}" * (MAX_PARSE // 13 + 10) + "{{ cycler.__init__.__globals__ }}"
    start = time.perf_counter()
    found = check_template(big, "big")
    assert time.perf_counter() - start < 5
    assert "template-too-large" in rules(found)
    assert worst(found) == "critical"
    assert rules(check_template("{{ message }}" * (MAX_PARSE // 13 + 10), "big")) == {"template-too-large"}


def test_many_templates_share_one_parse_budget() -> None:
    strings = {f"k{i}": "{{ a }}" + "x" * 60_000 for i in range(40)}
    strings["z"] = "{{ lipsum.__globals__ }}"
    start = time.perf_counter()
    found = scan_json_config(_json(strings), "many.json")
    assert time.perf_counter() - start < 5
    assert worst(found) == "critical"


def test_many_small_template_strings_are_bounded() -> None:
    merges = [f"{{{{ t{i} }}}}" for i in range(100_000)] + ["{{ cycler.__init__ }}"]
    start = time.perf_counter()
    found = scan_json_config(_json({"model": {"merges": merges}}), "tokenizer.json")
    assert time.perf_counter() - start < 5
    assert worst(found) == "critical"
    too_many = [f for f in found if f.rule == "template-too-large"]
    assert len(too_many) == 1 and too_many[0].severity == "low"
    # the chat template is checked first, however many other strings there are
    config = {"a": merges[:5000], "chat_template": "{{ lipsum|attr(x) }}"}
    found = {f.rule: f for f in scan_json_config(_json(config), "tokenizer_config.json")}
    assert found["template-dynamic-attribute"].severity == "high"  # parsed, not only searched


def test_pathological_inputs_end_quickly() -> None:
    cases = [
        "{{" * 1_000_000,
        "{%" * 1_000_000,
        "{{ " + "'" * 200_000,
        "{{ " + "\\'" * 200_000 + " }}",
        "{{ '" + "\\" * 100_000,
        "{{ " + "[" * 100_000,
        "{# " + "x" * 1_000_000,
        "{{a}}" * 50_000,
    ]
    for text in cases:
        start = time.perf_counter()
        for found in (
            check_template(text, ""),
            scan_text_template(text.encode(), "x.j2"),
            scan_json_config(_json({"chat_template": text}), "t.json"),
        ):
            assert all(isinstance(f, Finding) for f in found)
        assert time.perf_counter() - start < 10, text[:20]


def test_never_raises_on_random_bytes() -> None:
    import random

    rng = random.Random(4)
    alphabet = b"{}%#'\"\\()[]|.~_ abcxyz0129\n\x00\xff!:-"
    for _ in range(300):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        for call in (
            lambda d: scan_json_config(d, "r.json"),
            lambda d: scan_text_template(d, "r.j2"),
            lambda d: scan_text_template(d, "r.yaml"),
            lambda d: scan_text_template(d, "r.txt"),
            lambda d: check_template(d.decode("latin-1"), "r"),
        ):
            try:
                found = call(data)
            except FormatError:
                continue
            assert all(isinstance(f, Finding) for f in found)
        assert isinstance(is_template_text(data), bool)
    assert check_template(None, "x") == []  # type: ignore[arg-type]


def test_ten_megabyte_tokenizer_json_is_fast() -> None:
    import random

    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyzĠĊ{}%"
    vocab = {}
    while len(vocab) < 200_000:
        vocab["".join(rng.choices(letters, k=rng.randint(2, 12)))] = len(vocab)
    tokens = list(vocab)
    merges = [
        f"{a} {b}"
        for a, b in zip(rng.choices(tokens, k=200_000), rng.choices(tokens, k=200_000), strict=True)
    ]
    data = json.dumps(
        {"version": "1.0", "added_tokens": [], "model": {"type": "BPE", "vocab": vocab, "merges": merges}},
        ensure_ascii=True,
    ).encode()
    assert len(data) > 8_000_000
    start = time.perf_counter()
    found = scan_json_config(data, "tokenizer.json")
    elapsed = time.perf_counter() - start
    assert not at_least(found, "medium")
    assert elapsed < 1.5, elapsed


# ---------------------------------------------------------------------------------------------
# Text files and YAML.


def test_template_files() -> None:
    assert scan_text_template(QWEN25_TOOLS.encode(), "chat_template.jinja") == []
    found = scan_text_template(MALICIOUS["cve-2024-34359"].encode(), "chat_template.jinja")
    assert worst(found) == "critical"
    assert found[0].location.startswith("chat_template.jinja, line ")
    broken = scan_text_template(b"{% for m in messages %}{{ m.content }}", "t.j2")
    assert [(f.rule, f.severity) for f in broken] == [("template-unparseable", "medium")]


def test_other_template_languages_are_not_unparseable() -> None:
    go = b"{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>{{ end }}{{ range .Messages }}{{ .Content }}{{ end }}"
    assert scan_text_template(go, "template.tmpl") == []
    handlebars = b"{{#each messages}}{{role}}: {{content}}{{/each}}"
    assert scan_text_template(handlebars, "prompt.template") == []
    readme = b"# Usage\n\nWrite `{{ name }}` in your prompt, or `{% raw %}`.\n"
    assert not at_least(scan_text_template(readme, "README.txt"), "medium")


def test_yaml_python_tags() -> None:
    cases = {
        b"model: !!python/object/apply:os.system ['id']\n": "object/apply",
        b"x: !!python/object/new:subprocess.Popen [['id']]\n": "object/new",
        b"x: !!python/name:os.system\n": "name",
        b"x: !!python/module:os\n": "module",
        b"x: !!python/object:__main__.Evil {a: 1}\n": "object",
        b"- !python/object/apply:os.system ['id']\n": "object/apply",
        b"x: !<tag:yaml.org,2002:python/object/apply:os.system> ['id']\n": "object/apply",
        b"%TAG !p! tag:yaml.org,2002:python/\n---\nx: !p!object/apply:os.system ['id']\n": "",
    }
    for data, kind in cases.items():
        found = scan_text_template(data, "config.yaml")
        tags = [f for f in found if f.rule == "yaml-python-tag"]
        assert tags and all(f.severity == "critical" for f in tags), data
        assert kind in tags[0].evidence
    # a dangerous tag in an unnamed text config too
    assert worst(scan_text_template(b"a: !!python/object/apply:os.system ['id']\n", "MLmodel")) == "critical"


def test_yaml_harmless_python_tags_and_comments() -> None:
    assert scan_text_template(b"shape: !!python/tuple [1, 2]\n", "c.yaml") == []
    assert scan_text_template(b"# never use !!python/object/apply:os.system\na: 1\n", "c.yaml") == []
    assert scan_text_template(b"a: 1  # !!python/name:os.system\n", "c.yaml") == []


def test_yaml_templates_by_scalar() -> None:
    pytest.importorskip("yaml")
    # YAML double-quoted escapes: the template itself says '\x5f...' (what the renderer sees)
    data = b"chat_template: \"{{ lipsum|attr('\\\\x5f\\\\x5fglobals\\\\x5f\\\\x5f') }}\"\n"
    found = scan_text_template(data, "config.yaml")
    assert worst(found) == "critical"
    assert any("chat_template (YAML line 1)" in f.location for f in found)
    benign = (
        b"chat_template: |\n  {% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n  {% endfor %}\n"
    )
    assert scan_text_template(benign, "config.yaml") == []


def test_yaml_without_pyyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # `import yaml` now raises ImportError
    data = b"chat_template:\n  \"{{ config.__class__.__init__.__globals__['os'].system('id') }}\"\nname: x\n"
    assert worst(scan_text_template(data, "c.yaml")) == "critical"
    assert worst(scan_text_template(b"x: !!python/name:os.system\n", "c.yaml")) == "critical"
    benign = b"chat_template: '{% for m in messages %}{{ m[''role''] }}{% endfor %}'\n"
    assert scan_text_template(benign, "c.yaml") == []


def test_is_template_text() -> None:
    assert is_template_text(b"{% for m in messages %}{{ m }}{% endfor %}")
    assert is_template_text(b"x: {{ y }}")
    assert is_template_text(b"a: !!python/object/apply:os.system [id]")
    assert is_template_text(b"a: !python/name:os.system")
    assert not is_template_text(b"plain text { not a template }")
    assert not is_template_text(b"only an opening {{")
    assert not is_template_text(b"")


# ---------------------------------------------------------------------------------------------
# The public samples (../shared/corpus/security): every JSON, Jinja and YAML one.

SECURITY = CORPUS / "security"
_MANIFEST = SECURITY / "manifest.json"
SAMPLES: list[dict[str, Any]] = (
    [e for e in json.loads(_MANIFEST.read_text()) if e.get("format") in ("json", "jinja", "yaml")]
    if _MANIFEST.exists()
    else []
)


@pytest.mark.skipif(not SAMPLES, reason="../shared/corpus/security is not present on this machine")
def test_security_corpus_templates() -> None:
    missed: list[str] = []
    false_alarms: list[str] = []
    for entry in SAMPLES:
        path = SECURITY / entry["path"]
        data = path.read_bytes()
        if entry["format"] == "json":
            found = scan_json_config(data, path.name)
        else:
            found = scan_text_template(data, path.name)
        if entry["label"] == "malicious" and not at_least(found, "high"):
            missed.append(entry["path"])
        if entry["label"] == "benign" and at_least(found, "medium"):
            false_alarms.append(f"{entry['path']}: {[(f.rule, f.severity) for f in found]}")
    assert not missed, missed
    assert not false_alarms, false_alarms
    labels = {e["label"] for e in SAMPLES}
    assert labels == {"malicious", "benign"}
