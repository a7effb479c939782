"""The paper's non-generative baselines (SVM, random forest, gradient boosting, logistic regression on
TF-IDF; a fine-tuned encoder), fitted and scored on the same rows as the generative models, so a
generative model's accuracy can be read against them. `run.py` is the command (options, data,
outputs), `classic.py` the scikit-learn models, `encoder.py` the fine-tuned encoder.
"""
