"""SIRTResponseLib: responder / non-responder models of liver radioembolization, importable without 3D Slicer.

Modules, each with one job:

- ``labels``      response categories (mRECIST, EASL, RECIST, PERCIST) → binary labels; cohort tables
- ``strategies``  which feature columns each modelling strategy uses (the one place with column rules)
- ``univariate``  Mann–Whitney U per feature with Benjamini–Hochberg FDR
- ``roc``         ROC of a single metric with Youden, best-accuracy and target-specificity thresholds
- ``metrics``     AUC / accuracy / sensitivity / specificity, bootstrap CIs, DeLong's test
- ``features``    in-fold preprocessing: Spearman redundancy filter, selectors, SMOTE
- ``glmboost``    component-wise likelihood boosting of a logistic model (R's ``glmboost``)
- ``models``      classifier registry and hyper-parameter grids; the training pipeline
- ``study``       strategies × selectors × classifiers, nested CV, resumable, local or Dask
- ``model_io``    model folders: skops payload with an allow-list, model card, prediction
- ``survival``    Kaplan–Meier / log-rank / Cox, logistic tumour control, mixed models
- ``report``      plots and the HTML summary
- ``synthetic``   synthetic cohorts with SIRTDosiomics column names and a planted signal (tests, benchmark)
- ``cli``         the ``sirt train``, ``sirt predict`` and ``sirt stats`` subcommands

This file imports nothing heavy, so that ``sirt`` starts quickly for the other subcommands.
"""
