"""Gradient transformations: adaptive rules and loss-driven controllers, as Optax parts."""

from lrlab.transforms.adadelta import ScaleByAdadeltaState as ScaleByAdadeltaState
from lrlab.transforms.adadelta import scale_by_adadelta as scale_by_adadelta
from lrlab.transforms.adagrad import ScaleByAdagradState as ScaleByAdagradState
from lrlab.transforms.adagrad import scale_by_adagrad as scale_by_adagrad
from lrlab.transforms.adam import ScaleByAdamState as ScaleByAdamState
from lrlab.transforms.adam import scale_by_adam as scale_by_adam
from lrlab.transforms.adamax import ScaleByAdamaxState as ScaleByAdamaxState
from lrlab.transforms.adamax import scale_by_adamax as scale_by_adamax
from lrlab.transforms.clipping import clip_by_global_norm as clip_by_global_norm
from lrlab.transforms.clipping import clip_by_value as clip_by_value
from lrlab.transforms.dadaptation import ScaleByDadaptAdamState as ScaleByDadaptAdamState
from lrlab.transforms.dadaptation import ScaleByDadaptSgdState as ScaleByDadaptSgdState
from lrlab.transforms.dadaptation import scale_by_dadapt_adam as scale_by_dadapt_adam
from lrlab.transforms.dadaptation import scale_by_dadapt_sgd as scale_by_dadapt_sgd
from lrlab.transforms.dog import ScaleByDogState as ScaleByDogState
from lrlab.transforms.dog import scale_by_dog as scale_by_dog
from lrlab.transforms.feedback import LossFeedbackState as LossFeedbackState
from lrlab.transforms.feedback import loss_feedback as loss_feedback
from lrlab.transforms.hypergradient import ScaleByHypergradientState as ScaleByHypergradientState
from lrlab.transforms.hypergradient import scale_by_hypergradient as scale_by_hypergradient
from lrlab.transforms.learning_rate import ScaleByLearningRateState as ScaleByLearningRateState
from lrlab.transforms.learning_rate import scale_by_learning_rate as scale_by_learning_rate
from lrlab.transforms.momentum import TraceState as TraceState
from lrlab.transforms.momentum import trace as trace
from lrlab.transforms.multipliers import scale_by_multipliers as scale_by_multipliers
from lrlab.transforms.nadam import ScaleByNadamState as ScaleByNadamState
from lrlab.transforms.nadam import scale_by_nadam as scale_by_nadam
from lrlab.transforms.plateau import ReduceOnPlateauState as ReduceOnPlateauState
from lrlab.transforms.plateau import reduce_on_plateau as reduce_on_plateau
from lrlab.transforms.polyak import ScaleByPolyakState as ScaleByPolyakState
from lrlab.transforms.polyak import scale_by_polyak as scale_by_polyak
from lrlab.transforms.prodigy import ScaleByProdigyState as ScaleByProdigyState
from lrlab.transforms.prodigy import scale_by_prodigy as scale_by_prodigy
from lrlab.transforms.radam import ScaleByRadamState as ScaleByRadamState
from lrlab.transforms.radam import scale_by_radam as scale_by_radam
from lrlab.transforms.regularization import add_decayed_weights as add_decayed_weights
from lrlab.transforms.regularization import add_l1 as add_l1
from lrlab.transforms.regularization import add_l2 as add_l2
from lrlab.transforms.rms import ScaleByRmsState as ScaleByRmsState
from lrlab.transforms.rms import scale_by_rms as scale_by_rms
from lrlab.transforms.schedule_free import ScaleByScheduleFreeState as ScaleByScheduleFreeState
from lrlab.transforms.schedule_free import eval_params as eval_params
from lrlab.transforms.schedule_free import scale_by_schedule_free as scale_by_schedule_free

__all__ = [
  "LossFeedbackState",
  "ReduceOnPlateauState",
  "ScaleByAdadeltaState",
  "ScaleByAdagradState",
  "ScaleByAdamState",
  "ScaleByAdamaxState",
  "ScaleByDadaptAdamState",
  "ScaleByDadaptSgdState",
  "ScaleByDogState",
  "ScaleByHypergradientState",
  "ScaleByLearningRateState",
  "ScaleByNadamState",
  "ScaleByPolyakState",
  "ScaleByProdigyState",
  "ScaleByRadamState",
  "ScaleByRmsState",
  "ScaleByScheduleFreeState",
  "TraceState",
  "add_decayed_weights",
  "add_l1",
  "add_l2",
  "clip_by_global_norm",
  "clip_by_value",
  "eval_params",
  "loss_feedback",
  "reduce_on_plateau",
  "scale_by_adadelta",
  "scale_by_adagrad",
  "scale_by_adam",
  "scale_by_adamax",
  "scale_by_dadapt_adam",
  "scale_by_dadapt_sgd",
  "scale_by_dog",
  "scale_by_hypergradient",
  "scale_by_learning_rate",
  "scale_by_multipliers",
  "scale_by_nadam",
  "scale_by_polyak",
  "scale_by_prodigy",
  "scale_by_radam",
  "scale_by_rms",
  "scale_by_schedule_free",
  "trace",
]
