"""Federated gradient-boosted trees.

Horizontal (``kind = "horizontal"``, ``model = "gbdt"``): banks with the same columns grow
one XGBoost-style model from global gradient and hessian histograms combined by secure
sum. Modules: :mod:`~federated.trees.booster` (the tree arithmetic, XGBoost's ``hist``
step for step), :mod:`~federated.trees.binning` (global quantile bins from a mergeable
sketch), :mod:`~federated.trees.party` / :mod:`~federated.trees.client` (a bank's side),
:mod:`~federated.trees.server` (the coordinator), :mod:`~federated.trees.local` (the same
protocol in one process), :mod:`~federated.trees.pooled` (the pooled XGBoost oracle).

Vertical (SecureBoost-style, in one process so far): :mod:`~federated.trees.secureboost`
(the guest's Paillier-encrypted gradients, the hosts' encrypted bin sums).
XGBoost and Flower are imported only where needed.
"""
