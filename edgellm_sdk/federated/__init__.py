"""Federated LoRA fine-tuning across devices on Flower (extra ``federated``, Python >= 3.11).

    aggregation   numpy: svd (product average re-factored), fixed-a (FedAvg on B), checks
    plan          RoundPlan: what server and devices agree on, sent in each round's config
    local         torch: a device's round (finetune's loop), server evaluation and export
    device        data with PII redacted, the base-model check
    checkpoints   the server's per-round checkpoints and resume
    strategy      Flower strategies: refused nodes out, bad replies dropped, DP wrapper
    server_app    the Flower ServerApp;  client_app: the ClientApp (both run by Flower)
    runtime       SuperLink / SuperNode / flwr run as child processes (process groups, timeouts)
    tls           certificates;  commands: serve / join;  cli: the subcommands

Nothing outside this package imports it but the CLI; it imports core, toolchain and privacy.
"""
