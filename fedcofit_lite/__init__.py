"""fedcofit_lite: federated fine-tuning by semantic consensus (FedCoFiT).

The modules follow the protocol, one stage each::

    config      typed run configuration, YAML presets, validation
    tasks       the project's auto-checkable task families (data generator)
    data        example schema, loaders, partitioners
    models      model registry: embedded GGUF models, tiny-random, hub ids
    finetune    client-side LoRA fine-tuning (answer tokens only)
    collect     batched (mixed-adapter) generation on public prompts
    embed       sentence embedder
    cluster     per-prompt clusterers (scikit-learn estimators)
    consensus   consensus answer, agreement score, pseudo-label filter
    messages    typed wire messages, JSON serialization, byte counting
    client      client side of the protocol
    server      server side of the protocol
    federation  the in-process loop that drives clients and server
    evaluate    exact match, ROUGE-L, embedding similarity
    runlog      run folder: config, metrics, answers, summary
"""

__version__ = "0.1.0"
