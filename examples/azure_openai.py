"""Meter Azure OpenAI: provider "Azure", and the model behind each deployment.

``openai.AzureOpenAI`` addresses *deployments* (``/openai/deployments/<name>/...``), and the
name you pass as ``model=`` is the deployment's. revenium records the underlying model the
response names (``gpt-4o-2024-08-06`` here); when there is no response to read it from (a
stream closed before its first chunk), it maps the deployment with ``REVENIUM_MODEL_ALIASES``
(``configure(model_aliases=...)`` in code), else records the deployment name. It never calls
Azure's management API to find out, and it logs no warning per call.

Chat streams ask for their usage chunk on api-version 2024-09-01 and later (and hide it from a
caller who did not ask for it); an older api-version is left alone and its stream's counts
are estimated. The stand-in server accepts Azure's ``/openai/...`` paths, so this runs offline.

Run: python examples/azure_openai.py
"""

from __future__ import annotations

import openai

import revenium
from revenium.providers._openai_standin import StandInServer

MESSAGES = [{"role": "user", "content": "Summarise our refund policy in one line"}]


def azure(endpoint: str, api_version: str) -> openai.AzureOpenAI:
    client = openai.AzureOpenAI(
        azure_endpoint=endpoint, api_key="azure-key", api_version=api_version
    )
    return revenium.wrap(client, metadata={"product_name": "policy-bot"})


def main() -> None:
    revenium.configure(model_aliases={"prod-chat": "gpt-4o"})  # or REVENIUM_MODEL_ALIASES
    with revenium.testing.capture() as captured, StandInServer() as server:
        endpoint = server.base_url.removesuffix("/v1")  # e.g. https://<resource>.openai.azure.com
        client = azure(endpoint, "2024-10-21")

        completion = client.chat.completions.create(model="prod-chat", messages=MESSAGES)
        print(f"chat:          {completion.choices[0].message.content!r}")

        chunks = list(
            client.chat.completions.create(model="prod-chat", messages=MESSAGES, stream=True)
        )
        hidden = all(chunk.choices for chunk in chunks)  # the injected usage chunk has none
        print(f"stream:        {len(chunks)} chunks, injected usage chunk hidden: {hidden}")

        client.chat.completions.create(model="prod-chat", messages=MESSAGES, stream=True).close()
        print("stream:        closed before its first chunk (model from the alias)")

        old = azure(endpoint, "2024-06-01")
        for _chunk in old.chat.completions.create(
            model="prod-chat", messages=MESSAGES, stream=True
        ):
            pass
        print("stream:        api-version 2024-06-01")

        for request in server.requests:
            options = request["body"].get("stream_options")
            print(f"  sent {request['path']}  stream_options={options}")

    print(f"\n{len(captured.completions)} records:")
    for record in captured.completions:
        print(
            f"  provider={record.provider} modelSource={record.model_source} "
            f"model={record.model:<18} stop={record.stop_reason.value:<9} "
            f"estimated={record.estimated!s:<5} in={record.input_token_count} "
            f"out={record.output_token_count}"
        )


if __name__ == "__main__":
    main()
