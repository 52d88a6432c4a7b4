"""Classifier registry, hyper-parameter grids and the training pipeline of one model.

The pipeline (imbalanced-learn's ``Pipeline``, so that oversampling runs in ``fit`` only)::

    impute (median) → Spearman redundancy filter → z-score → select k features → SMOTE → classifier

Every step is fitted on the rows given to ``fit`` — inside the study, the training rows of one
(inner or outer) fold. The grids are deliberately small: with 15–50 patients an inner 3-fold
split has 3–11 validation rows per fold, and a large grid only adds selection noise.

=========  ==============================================  ===================================
name       classifier                                      grid
=========  ==============================================  ===================================
dt         decision tree                                   max_depth 2, 3, unlimited
glmboost   component-wise likelihood boosting (glmboost)   mstop 50, 100, 200 (nu 0.1)
lr         L2 logistic regression                          C 0.01, 0.1, 1, 10
mlp        multilayer perceptron, 1 hidden layer of 8,     alpha 0.001, 0.1, 1
           L-BFGS
nb         Gaussian naive Bayes                            (none)
rf         random forest, 100 trees                        max_depth 3, unlimited
svm        RBF SVM with sigmoid (Platt) probabilities      C 0.1, 1, 10
           fitted by 3-fold cross-validation
xgb        gradient-boosted trees (XGBoost), 100 trees,    max_depth 1, 2, 3
           learning rate 0.1
=========  ==============================================  ===================================

``SVC(probability=True)`` is deprecated in scikit-learn 1.9; ``CalibratedClassifierCV(SVC(),
ensemble=False)`` is its documented replacement. Its internal 3-fold split sees the classes
balanced by SMOTE.
"""

from __future__ import annotations

from imblearn.pipeline import Pipeline
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from xgboost import XGBClassifier

from .features import SpearmanRedundancyFilter, make_oversampler, make_selector, selector_k_parameter
from .glmboost import GLMBoostClassifier

CLASSIFIERS = ("dt", "glmboost", "lr", "mlp", "nb", "rf", "svm", "xgb")


GRIDS: dict[str, dict[str, list]] = {
    "dt": {"max_depth": [2, 3, None]},
    "glmboost": {"mstop": [50, 100, 200]},
    "lr": {"C": [0.01, 0.1, 1.0, 10.0]},
    "mlp": {"alpha": [0.001, 0.1, 1.0]},
    "nb": {},
    "rf": {"max_depth": [3, None]},
    "svm": {"estimator__C": [0.1, 1.0, 10.0]},
    "xgb": {"max_depth": [1, 2, 3]},
}


def make_classifier(name: str, seed: int):
    if name == "dt":
        return DecisionTreeClassifier(random_state=seed)
    if name == "glmboost":
        return GLMBoostClassifier(mstop=100, nu=0.1)
    if name == "lr":
        return LogisticRegression(C=1.0, max_iter=1000)
    if name == "mlp":
        return MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=500, random_state=seed)
    if name == "nb":
        return GaussianNB()
    if name == "rf":
        return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    if name == "svm":
        return CalibratedClassifierCV(SVC(kernel="rbf", C=1.0, random_state=seed), method="sigmoid", cv=3, ensemble=False)
    if name == "xgb":
        return XGBClassifier(n_estimators=100, learning_rate=0.1, max_depth=2, n_jobs=1, random_state=seed, eval_metric="logloss")
    raise ValueError(f"unknown classifier {name!r}; known: {', '.join(CLASSIFIERS)}")


def preprocessing_steps(redundancy_threshold: float = 0.90) -> list[tuple[str, object]]:
    """The unfitted steps that do not depend on the selector: impute, redundancy filter, z-score."""
    return [
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("redundancy", SpearmanRedundancyFilter(threshold=redundancy_threshold)),
        ("scale", StandardScaler()),
    ]


def selection_steps(selector: str, *, n_features: int = 5, smote: bool = True, smote_k: int = 5, seed: int = 0) -> list[tuple[str, object]]:
    """The unfitted steps between the preprocessing and the classifier: select k, then SMOTE."""
    steps = [("select", make_selector(selector, n_features))]
    if smote:
        steps.append(("smote", make_oversampler(smote_k, seed)))
    return steps


def build_pipeline(
    selector: str,
    classifier: str,
    *,
    n_features: int = 5,
    redundancy_threshold: float = 0.90,
    smote: bool = True,
    smote_k: int = 5,
    seed: int = 0,
) -> Pipeline:
    """The unfitted pipeline of one (selector, classifier) pair."""
    steps = [
        *preprocessing_steps(redundancy_threshold),
        *selection_steps(selector, n_features=n_features, smote=smote, smote_k=smote_k, seed=seed),
        ("classifier", make_classifier(classifier, seed)),
    ]
    return Pipeline(steps)


def param_grid(selector: str, classifier: str, n_features: tuple[int, ...] = ()) -> dict[str, list]:
    """The grid of one pipeline, with step prefixes; ``n_features`` adds a grid over k."""
    if classifier not in GRIDS:
        raise ValueError(f"unknown classifier {classifier!r}; known: {', '.join(CLASSIFIERS)}")
    grid = {f"classifier__{k}": list(v) for k, v in GRIDS[classifier].items()}
    if len(n_features) > 1:
        grid[f"select__{selector_k_parameter(selector)}"] = list(n_features)
    return grid


def selected_features(pipeline: Pipeline, feature_names: list[str]) -> list[str]:
    """The input names that reach the classifier of a fitted pipeline, in column order."""
    names = list(feature_names)
    for _, step in pipeline.steps[:-1]:
        if hasattr(step, "get_support"):
            names = [n for n, keep in zip(names, step.get_support()) if keep]
    return names
