"""The `oracle` row: no edit, a head trained on the group-balanced subset (where the spec has one)."""

from __future__ import annotations

from editing_service.edit.head_choice import choose_head_C
from editing_service.edit.rows.base import ReportRow, RowOutput, RowSkipped, register
from editing_service.edit.rows.context import RowContext

NO_ORACLE = "the dataset spec has no 'oracle' role (a group-balanced training subset)"


@register
class Oracle(ReportRow):
    name = "oracle"
    title = "the oracle head trained on group-balanced data"
    role = "reference"
    summary = "No edit; a head trained on the spec's group-balanced subset (its 'oracle' role)."
    order = 90

    def run(self, ctx: RowContext) -> RowOutput:
        from editing_service.data import load_role

        if "oracle" not in ctx.spec.roles:
            raise RowSkipped(NO_ORACLE)
        oracle = load_role(ctx.spec, "oracle")
        features = ctx.read(oracle.texts, [], "oracle")
        C, source = ctx.C, ctx.C_source
        if ctx.settings.edit.head_C == "validate":
            C, _ = choose_head_C(
                train_features=features, train_labels=oracle.labels,
                validate_features=ctx.validate_cache.head_features, validate_labels=ctx.validate.labels,
                validate_groups=ctx.validate.groups.get(ctx.attribute) if ctx.attribute else None,
                label_names=list(ctx.spec.labels), seed=ctx.seed,
            )
            source = "chosen on the validate split"
        head = ctx.fit_head(features, oracle.labels, C=C)
        return RowOutput(ctx.original_eval, head,
                         f"No edit; a logistic-regression head (C = {C:g}, {source}) trained on the "
                         f"group-balanced subset {oracle.name!r}.")
