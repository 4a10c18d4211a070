"""04_losses: alternative correct answers (full marks) and plausible mistakes (lose points)."""

ALTERNATIVES = {
    "mse_loss": '''
def mse_loss(pred, target, reduction="mean"):
    diff = pred - target
    per_element = diff * diff
    reducers = {"none": lambda t: t, "sum": torch.sum, "mean": lambda t: t.sum() / t.numel()}
    return reducers[reduction](per_element)
''',
    "bce_loss": '''
def bce_loss(p, target, reduction="mean"):
    floor = torch.tensor(-100.0, dtype=p.dtype)
    log_p = torch.maximum(torch.log(p), floor)
    log_q = torch.maximum(torch.log(1 - p), floor)
    loss = -target * log_p - (1 - target) * log_q
    if reduction == "mean":
        return torch.mean(loss)
    return loss.sum() if reduction == "sum" else loss
''',
    "bce_with_logits": '''
def bce_with_logits(logits, target, pos_weight=None, reduction="mean"):
    # (1 - y) x + (1 + (w - 1) y) softplus(-x), torch's own formula
    weight = 1.0 if pos_weight is None else 1 + (pos_weight - 1) * target
    loss = (1 - target) * logits + weight * F.softplus(-logits)
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()
''',
    "cross_entropy": '''
def cross_entropy(logits, target, label_smoothing=0.0, ignore_index=-100, reduction="mean"):
    if logits.dim() > 2:  # [N, C, d...] → rows of [*, C], then back: recursion is fine
        c = logits.shape[1]
        rows = logits.movedim(1, -1).reshape(-1, c)
        per_row = cross_entropy(rows, target.reshape(-1), label_smoothing, ignore_index, "none")
        per_row = per_row.reshape(target.shape)
        if reduction == "none":
            return per_row
        if reduction == "sum":
            return per_row.sum()
        return per_row.sum() / (target != ignore_index).sum()
    log_p = torch.log_softmax(logits, dim=1)
    c = logits.shape[1]
    valid = target != ignore_index
    hit = (target.clamp(min=0)[:, None] == torch.arange(c)[None, :]) & valid[:, None]
    q = (1 - label_smoothing) * hit + (label_smoothing / c) * valid[:, None]
    losses = -(q * log_p).sum(dim=1)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / valid.sum()
''',
    "ctc_greedy_decode": '''
def ctc_greedy_decode(log_probs, blank=0):
    out = []
    previous = None
    for t in range(log_probs.shape[0]):
        k = int(torch.argmax(log_probs[t]))
        if k != previous and k != blank:
            out.append(k)
        previous = k
    return out
''',
    "ctc_loss": '''
def ctc_loss(log_probs, target, blank=0):
    # plain loops over frames and states, with a log-add that never sees two -infs
    minus_inf = torch.tensor(float("-inf"), dtype=log_probs.dtype)

    def log_add(a, b):
        if a.item() == float("-inf"):
            return b
        if b.item() == float("-inf"):
            return a
        m = torch.maximum(a, b)
        return m + torch.log(torch.exp(a - m) + torch.exp(b - m))

    labels = [blank]
    for k in target:
        labels += [k, blank]
    T, L = log_probs.shape[0], len(labels)
    alpha = [minus_inf] * L
    alpha[0] = log_probs[0, labels[0]]
    if L > 1:
        alpha[1] = log_probs[0, labels[1]]
    for t in range(1, T):
        new = []
        for s in range(L):
            total = alpha[s]
            if s >= 1:
                total = log_add(total, alpha[s - 1])
            if s >= 2 and labels[s] != blank and labels[s] != labels[s - 2]:
                total = log_add(total, alpha[s - 2])
            new.append(total + log_probs[t, labels[s]] if total.item() != float("-inf") else minus_inf)
        alpha = new
    end = alpha[-1] if L == 1 else log_add(alpha[-1], alpha[-2])
    return -end
''',
    "confusion_counts": '''
def confusion_counts(pred, actual):
    counts = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    for p, a in zip(pred.reshape(-1).tolist(), actual.reshape(-1).tolist()):
        key = ("t" if p == a else "f") + ("p" if p else "n")
        counts[key] += 1
    return counts
''',
    "error_rates": '''
def error_rates(pred, actual):
    fp = (pred & ~actual).sum().item()
    tn = (~pred & ~actual).sum().item()
    fn = (~pred & actual).sum().item()
    tp = (pred & actual).sum().item()
    return {"type_i": fp / max(fp + tn, 1) * 1.0, "type_ii": fn / max(fn + tp, 1) * 1.0}
''',
    "precision_recall_f1": '''
def precision_recall_f1(pred, actual):
    tp = int(torch.count_nonzero(pred & actual))
    fp = int(torch.count_nonzero(pred & ~actual))
    fn = int(torch.count_nonzero(~pred & actual))
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0  # the same harmonic mean
    return precision, recall, f1
''',
}

MUTANTS = {
    "mse_loss": [
        '''
def mse_loss(pred, target, reduction="mean"):  # "mean" divides by the batch size only
    squared = (pred - target) ** 2
    if reduction == "none":
        return squared
    return squared.sum() if reduction == "sum" else squared.sum() / len(pred)
''',
        '''
def mse_loss(pred, target, reduction="mean"):  # ignores reduction="none"
    squared = (pred - target) ** 2
    return squared.sum() if reduction == "sum" else squared.mean()
''',
        '''
def mse_loss(pred, target, reduction="mean"):  # calls the library
    return F.mse_loss(pred, target, reduction=reduction)
''',
    ],
    "bce_loss": [
        '''
def bce_loss(p, target, reduction="mean"):  # no clamp: inf and nan at p = 0 or 1
    loss = -(target * torch.log(p) + (1 - target) * torch.log(1 - p))
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
''',
        '''
def bce_loss(p, target, reduction="mean"):  # clamps p (Keras style) instead of the logs
    p = p.clamp(1e-7, 1 - 1e-7)
    loss = -(target * torch.log(p) + (1 - target) * torch.log(1 - p))
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
''',
        '''
def bce_loss(p, target, reduction="mean"):  # forgets the negative term
    loss = -(target * torch.log(p).clamp(min=-100))
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
''',
    ],
    "bce_with_logits": [
        '''
def bce_with_logits(logits, target, pos_weight=None, reduction="mean"):  # sigmoid, then log
    p = torch.sigmoid(logits)
    w = 1 if pos_weight is None else pos_weight
    loss = -(w * target * torch.log(p) + (1 - target) * torch.log(1 - p))
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
''',
        '''
def bce_with_logits(logits, target, pos_weight=None, reduction="mean"):  # pos_weight on the negatives
    log_sig = F.logsigmoid(logits)
    log_not = F.logsigmoid(-logits)
    w = 1 if pos_weight is None else pos_weight
    loss = -(target * log_sig + w * (1 - target) * log_not)
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
''',
        '''
def bce_with_logits(logits, target, pos_weight=None, reduction="mean"):  # softplus without the max trick
    w = 1 if pos_weight is None else pos_weight
    softplus_neg = torch.log1p(torch.exp(-logits))
    loss = (1 - target) * logits + (1 + (w - 1) * target) * softplus_neg
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
''',
    ],
    "cross_entropy": [
        '''
def cross_entropy(logits, target, label_smoothing=0.0, ignore_index=-100, reduction="mean"):
    # the mean divides by every sample, ignored ones included
    log_p = torch.log_softmax(logits, dim=1)
    keep = target != ignore_index
    nll = -log_p.gather(1, torch.where(keep, target, 0).unsqueeze(1)).squeeze(1)
    loss = (1 - label_smoothing) * nll - label_smoothing * log_p.mean(dim=1)
    loss = torch.where(keep, loss, 0.0)
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
''',
        '''
def cross_entropy(logits, target, label_smoothing=0.0, ignore_index=-100, reduction="mean"):
    # log of softmax: -inf for large logits
    log_p = torch.log(torch.softmax(logits, dim=1))
    keep = target != ignore_index
    nll = -log_p.gather(1, torch.where(keep, target, 0).unsqueeze(1)).squeeze(1)
    loss = (1 - label_smoothing) * nll - label_smoothing * log_p.mean(dim=1)
    loss = torch.where(keep, loss, 0.0)
    return {"none": loss, "sum": loss.sum(), "mean": loss.sum() / keep.sum()}[reduction]
''',
        '''
def cross_entropy(logits, target, label_smoothing=0.0, ignore_index=-100, reduction="mean"):
    # smoothing spreads eps over the C - 1 wrong classes only
    log_p = torch.log_softmax(logits, dim=1)
    c = logits.shape[1]
    keep = target != ignore_index
    picked = log_p.gather(1, torch.where(keep, target, 0).unsqueeze(1)).squeeze(1)
    others = (log_p.sum(dim=1) - picked) / max(c - 1, 1)
    loss = -(1 - label_smoothing) * picked - label_smoothing * others
    loss = torch.where(keep, loss, 0.0)
    return {"none": loss, "sum": loss.sum(), "mean": loss.sum() / keep.sum()}[reduction]
''',
        '''
def cross_entropy(logits, target, label_smoothing=0.0, ignore_index=-100, reduction="mean"):
    # softmax over the last dimension: right for [N, C], wrong for [N, C, d]
    log_p = torch.log_softmax(logits, dim=-1)
    keep = target != ignore_index
    nll = -log_p.gather(1, torch.where(keep, target, 0).unsqueeze(1)).squeeze(1)
    loss = (1 - label_smoothing) * nll - label_smoothing * log_p.mean(dim=1)
    loss = torch.where(keep, loss, 0.0)
    return {"none": loss, "sum": loss.sum(), "mean": loss.sum() / keep.sum()}[reduction]
''',
    ],
    "ctc_greedy_decode": [
        '''
def ctc_greedy_decode(log_probs, blank=0):  # removes blanks before merging repeats
    best = [k for k in log_probs.argmax(-1).tolist() if k != blank]
    return [k for i, k in enumerate(best) if i == 0 or k != best[i - 1]]
''',
        '''
def ctc_greedy_decode(log_probs, blank=0):  # the blank is always 0
    best = log_probs.argmax(-1).tolist()
    return [k for i, k in enumerate(best) if k != 0 and (i == 0 or k != best[i - 1])]
''',
        '''
def ctc_greedy_decode(log_probs, blank=0):  # a tensor, not a list
    best = torch.unique_consecutive(log_probs.argmax(-1))
    return best[best != blank]
''',
    ],
    "ctc_loss": [
        '''
def ctc_loss(log_probs, target, blank=0):  # right values, but torch.logsumexp over -infs: nan gradients
    ext = [blank]
    for k in target:
        ext += [k, blank]
    L = len(ext)
    skip = torch.tensor([s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] for s in range(L)])
    emit = log_probs[:, ext]
    ninf = torch.full((L,), float("-inf"), dtype=log_probs.dtype)
    alpha = torch.cat([emit[0, :2], ninf[2:]])
    for t in range(1, log_probs.shape[0]):
        prev = torch.cat([ninf[:1], alpha[:-1]])
        prev2 = torch.where(skip, torch.cat([ninf[:2], alpha[:-2]]), ninf)
        alpha = torch.logsumexp(torch.stack([alpha, prev, prev2]), dim=0) + emit[t]
    return -torch.logsumexp(alpha[-2:], dim=0)
''',
        '''
def ctc_loss(log_probs, target, blank=0):  # skips the blank even between repeated labels
    ext = [blank]
    for k in target:
        ext += [k, blank]
    L = len(ext)
    skip = torch.tensor([s >= 2 and ext[s] != blank for s in range(L)])
    emit = log_probs[:, ext]
    floor = torch.full((L,), -1e30, dtype=log_probs.dtype)
    alpha = torch.cat([emit[0, :2], floor[2:]])
    for t in range(1, log_probs.shape[0]):
        prev = torch.cat([floor[:1], alpha[:-1]])
        prev2 = torch.where(skip, torch.cat([floor[:2], alpha[:-2]]), floor)
        alpha = torch.logsumexp(torch.stack([alpha, prev, prev2]), dim=0) + emit[t]
    loss = -torch.logsumexp(alpha[-2:], dim=0)
    return torch.where(loss > 1e29, torch.full_like(loss, float("inf")), loss)
''',
        '''
def ctc_loss(log_probs, target, blank=0):  # must end on the final blank
    ext = [blank]
    for k in target:
        ext += [k, blank]
    L = len(ext)
    skip = torch.tensor([s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] for s in range(L)])
    emit = log_probs[:, ext]
    floor = torch.full((L,), -1e30, dtype=log_probs.dtype)
    alpha = torch.cat([emit[0, :2], floor[2:]])
    for t in range(1, log_probs.shape[0]):
        prev = torch.cat([floor[:1], alpha[:-1]])
        prev2 = torch.where(skip, torch.cat([floor[:2], alpha[:-2]]), floor)
        alpha = torch.logsumexp(torch.stack([alpha, prev, prev2]), dim=0) + emit[t]
    loss = -alpha[-1]
    return torch.where(loss > 1e29, torch.full_like(loss, float("inf")), loss)
''',
    ],
    "confusion_counts": [
        '''
def confusion_counts(pred, actual):  # false positives and false negatives swapped
    return {"tp": int((pred & actual).sum()), "fp": int((~pred & actual).sum()),
            "tn": int((~pred & ~actual).sum()), "fn": int((pred & ~actual).sum())}
''',
        '''
def confusion_counts(pred, actual):  # tensors, not ints
    return {"tp": (pred & actual).sum(), "fp": (pred & ~actual).sum(),
            "tn": (~pred & ~actual).sum(), "fn": (~pred & actual).sum()}
''',
        '''
def confusion_counts(pred, actual):  # the total from len(): rows, not elements
    tp, fp, fn = int((pred & actual).sum()), int((pred & ~actual).sum()), int((~pred & actual).sum())
    return {"tp": tp, "fp": fp, "tn": len(pred) - tp - fp - fn, "fn": fn}
''',
    ],
    "error_rates": [
        '''
def error_rates(pred, actual):  # false discovery and false omission rates instead
    tp, fp = int((pred & actual).sum()), int((pred & ~actual).sum())
    tn, fn = int((~pred & ~actual).sum()), int((~pred & actual).sum())
    return {"type_i": fp / (fp + tp) if fp + tp else 0.0, "type_ii": fn / (fn + tn) if fn + tn else 0.0}
''',
        '''
def error_rates(pred, actual):  # type I and type II swapped
    tp, fp = int((pred & actual).sum()), int((pred & ~actual).sum())
    tn, fn = int((~pred & ~actual).sum()), int((~pred & actual).sum())
    return {"type_ii": fp / (fp + tn) if fp + tn else 0.0, "type_i": fn / (fn + tp) if fn + tp else 0.0}
''',
        '''
def error_rates(pred, actual):  # no guard: fails when a class is absent
    tp, fp = int((pred & actual).sum()), int((pred & ~actual).sum())
    tn, fn = int((~pred & ~actual).sum()), int((~pred & actual).sum())
    return {"type_i": fp / (fp + tn), "type_ii": fn / (fn + tp)}
''',
    ],
    "precision_recall_f1": [
        '''
def precision_recall_f1(pred, actual):  # F1 as the arithmetic mean
    tp, fp, fn = int((pred & actual).sum()), int((pred & ~actual).sum()), int((~pred & actual).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, (precision + recall) / 2
''',
        '''
def precision_recall_f1(pred, actual):  # precision and recall swapped
    tp, fp, fn = int((pred & actual).sum()), int((pred & ~actual).sum()), int((~pred & actual).sum())
    recall = tp / (tp + fp) if tp + fp else 0.0
    precision = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1
''',
        '''
def precision_recall_f1(pred, actual):  # nan where undefined (tensor division)
    tp, fp, fn = (pred & actual).sum(), (pred & ~actual).sum(), (~pred & actual).sum()
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return float(precision), float(recall), float(2 * precision * recall / (precision + recall))
''',
    ],
}


# Answers that delegate to the course's own reference implementation: each must lose the
# exercise's points (read from the answer's text, or refused at run time when the name is computed).

MUTANTS["mse_loss"].append("""def mse_loss(*args, **kwargs):
    from course.checks.losses import mse_loss_reference
    return mse_loss_reference(*args, **kwargs)""")
MUTANTS["bce_loss"].append("""import course.checks.losses as checks

def bce_loss(*args, **kwargs):
    return checks.bce_reference(*args, **kwargs)""")
MUTANTS["bce_with_logits"].append("""import sys

def bce_with_logits(*args, **kwargs):  # names computed at run time: only the run-time layer sees it
    module = getattr(sys, "mod" + "ules")["cour" + "se.checks.losses"]
    return getattr(module, "bce_with_log" + "its_reference")(*args, **kwargs)""")
MUTANTS["cross_entropy"].append("""def cross_entropy(*args, **kwargs):
    from course.checks.losses import cross_entropy_reference
    return cross_entropy_reference(*args, **kwargs)""")
MUTANTS["ctc_greedy_decode"].append("""import course.checks.losses as checks

def ctc_greedy_decode(*args, **kwargs):
    return checks.greedy_reference(*args, **kwargs)""")
MUTANTS["ctc_loss"].append("""import sys

def ctc_loss(*args, **kwargs):  # names computed at run time: only the run-time layer sees it
    module = getattr(sys, "mod" + "ules")["cour" + "se.checks.losses"]
    return getattr(module, "ctc_re" + "ference")(*args, **kwargs)""")
MUTANTS["confusion_counts"].append("""def confusion_counts(*args, **kwargs):
    from course.checks.losses import counts_reference
    return counts_reference(*args, **kwargs)""")
MUTANTS["error_rates"].append("""import course.checks.losses as checks

def error_rates(*args, **kwargs):
    return checks.rates_reference(*args, **kwargs)""")
MUTANTS["precision_recall_f1"].append("""import sys

def precision_recall_f1(*args, **kwargs):  # names computed at run time: only the run-time layer sees it
    module = getattr(sys, "mod" + "ules")["cour" + "se.checks.losses"]
    return getattr(module, "prf_re" + "ference")(*args, **kwargs)""")


def _ctc_with(log_add_body: str, comment: str) -> str:
    return f'''def ctc_loss(log_probs, target, blank=0):  # {comment}
    minus_inf = torch.tensor(float("-inf"), dtype=log_probs.dtype)

    def log_add(a, b):
        if a.item() == float("-inf"):
            return b
        if b.item() == float("-inf"):
            return a
{log_add_body}

    labels = [blank]
    for k in target:
        labels += [k, blank]
    T, L = log_probs.shape[0], len(labels)
    alpha = [minus_inf] * L
    alpha[0] = log_probs[0, labels[0]]
    if L > 1:
        alpha[1] = log_probs[0, labels[1]]
    for t in range(1, T):
        new = []
        for s in range(L):
            total = alpha[s]
            if s >= 1:
                total = log_add(total, alpha[s - 1])
            if s >= 2 and labels[s] != blank and labels[s] != labels[s - 2]:
                total = log_add(total, alpha[s - 2])
            new.append(total + log_probs[t, labels[s]] if total.item() != float("-inf") else minus_inf)
        alpha = new
    end = alpha[-1] if L == 1 else log_add(alpha[-1], alpha[-2])
    return -end'''


# Long inputs underflow unless every step stays in log space.
MUTANTS["ctc_loss"] += [
    _ctc_with("        return torch.log(torch.exp(a) + torch.exp(b))",
              "log-add without subtracting the max: exp(-3000) is 0"),
    '''def ctc_loss(log_probs, target, blank=0):  # probabilities, not log-probabilities: fine for short inputs
    probs = log_probs.exp()
    labels = [blank]
    for k in target:
        labels += [k, blank]
    T, L = probs.shape[0], len(labels)
    zero = torch.zeros((), dtype=probs.dtype)
    alpha = [zero] * L
    alpha[0] = probs[0, labels[0]]
    if L > 1:
        alpha[1] = probs[0, labels[1]]
    for t in range(1, T):
        new = []
        for s in range(L):
            total = alpha[s]
            if s >= 1:
                total = total + alpha[s - 1]
            if s >= 2 and labels[s] != blank and labels[s] != labels[s - 2]:
                total = total + alpha[s - 2]
            new.append(total * probs[t, labels[s]])
        alpha = new
    end = alpha[-1] if L == 1 else alpha[-1] + alpha[-2]
    return -torch.log(end)''',
]
