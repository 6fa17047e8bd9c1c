"""Circuit discovery: node effects of SAE features by attribution patching, integrated gradients and
exact ablation, and the circuit as the top-ranked features."""

from editing_service.circuit.attribution import attribution_patching
from editing_service.circuit.exact import exact_ablation
from editing_service.circuit.integrated_gradients import integrated_gradients
from editing_service.circuit.metric import true_class_metric
from editing_service.circuit.scores import AttributionDocument, NodeScores
from editing_service.circuit.selection import CircuitFeature, select_circuit

__all__ = ["AttributionDocument", "CircuitFeature", "NodeScores", "select_circuit", "attribution_patching", "exact_ablation", "integrated_gradients", "true_class_metric"]
