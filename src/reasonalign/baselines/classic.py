"""The paper's scikit-learn baselines: TF-IDF word 1-2-grams + SVM, random forest, gradient boosting
or logistic regression, hyper-parameters chosen by cross-validation on the training rows only.

Grids are small (2-3 values per parameter) on purpose: the point is a fair, tuned reference for
the generative models, fitted in about a minute on 4,000 DFAR rows on 2 CPU cores, not a search
for the best bag-of-words model. Gradient boosting sees at most 2,000 TF-IDF features, because it
scans every feature at every split and would otherwise dominate the run.
"""

# scikit-learn is imported inside the functions: the CLI imports this package's config for --help
MODELS = {
    "svm": "tf-idf + LinearSVC",
    "rf": "tf-idf + RandomForestClassifier",
    "gb": "tf-idf + GradientBoostingClassifier",
    "logreg": "tf-idf + LogisticRegression",
}


def pipeline(name: str, seed: int):
    """(pipeline, parameter grid) of one baseline; every random part is seeded with `seed`."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    def tfidf(**kw):
        return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, **kw)

    if name == "svm":
        steps, grid = [tfidf(), LinearSVC(random_state=seed)], {"tfidf__min_df": [1, 2], "clf__C": [0.1, 1, 10]}
    elif name == "logreg":
        steps = [tfidf(), LogisticRegression(solver="liblinear", random_state=seed)]
        grid = {"tfidf__min_df": [1, 2], "clf__C": [1, 10, 100]}
    elif name == "rf":
        steps = [tfidf(min_df=2), RandomForestClassifier(random_state=seed, n_jobs=2)]
        grid = {"clf__n_estimators": [100, 200], "clf__min_samples_leaf": [1, 2]}
    elif name == "gb":
        steps = [tfidf(min_df=2, max_features=2000), GradientBoostingClassifier(max_depth=3, random_state=seed)]
        grid = {"clf__n_estimators": [100, 200], "clf__learning_rate": [0.1, 0.3]}
    else:
        raise ValueError(name)
    return Pipeline([("tfidf", steps[0]), ("clf", steps[1])]), grid


def fit(name: str, texts: list[str], labels: list[int], cv_folds: int, seed: int):
    """GridSearchCV (stratified, shuffled, seeded folds; accuracy) refitted on all training rows.

    Returns (fitted model, best parameters, mean CV accuracy of the best, one row per grid point)."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    model, grid = pipeline(name, seed)
    search = GridSearchCV(model, grid, scoring="accuracy", n_jobs=1, refit=True,
                          cv=StratifiedKFold(cv_folds, shuffle=True, random_state=seed))
    search.fit(texts, labels)
    cv = search.cv_results_
    table = [{"params": p, "cv_accuracy": round(float(m), 4), "cv_std": round(float(s), 4)}
             for p, m, s in zip(cv["params"], cv["mean_test_score"], cv["std_test_score"])]
    return search.best_estimator_, search.best_params_, float(search.best_score_), table


def predict(model, texts: list[str]) -> tuple[list[int], list[float | None]]:
    """(predicted labels, P(unethical) where the model has probabilities; None for LinearSVC)."""
    pred = [int(p) for p in model.predict(texts)]
    if not hasattr(model, "predict_proba"):
        return pred, [None] * len(pred)
    column = list(model.classes_).index(1)
    return pred, [float(p[column]) for p in model.predict_proba(texts)]
