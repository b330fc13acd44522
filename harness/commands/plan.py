"""`uplab plan CONFIG`: the layer map and the linter's findings, without loading weights."""

from __future__ import annotations

from harness.commands._common import layer_count, report_findings, source_facts


def register(sub) -> None:
    p = sub.add_parser(
        "plan",
        help="show a mergekit passthrough config's layer map and lint it",
        description="Resolve a mergekit passthrough config to its layer map (per output layer: "
        "source layer, role orig/dup, slice, module scales), draw it as the seed's 000XX0 line "
        "and lint it. Needs no weights when --num-layers is given or the config's model path "
        "holds a config.json. Exit 0 when clean or only warnings (1 with --strict), 1 on lint "
        "errors, 2 on unreadable input.",
    )
    p.add_argument("config", help="mergekit YAML (merge_method: passthrough)")
    p.add_argument("--num-layers", type=layer_count, help="depth of the source model")
    p.add_argument("--model-type", help="architecture for tensor names (default: from the "
                   "source's config.json, else mistral)")
    p.add_argument("--source", help="local checkpoint to read the depth from instead of the "
                   "config's model path")
    p.add_argument("--no-table", action="store_true", help="omit the per-layer table")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.set_defaults(func=run)


def run(args) -> int:
    from harness import render
    from harness.lint import errors, lint
    from harness.plan import load_plan

    plan = load_plan(args.config)
    depth, model_type = source_facts(plan, args.num_layers, args.model_type, args.source)
    findings = lint(plan, depth, model_type)
    if not errors(findings):
        lm = plan.layer_map(depth, model_type)
        print(render.summary(lm))
        if not args.no_table:
            print()
            print(render.table(lm))
    report_findings(findings)
    if errors(findings) or (args.strict and findings):
        return 1
    return 0
