"""05_optimization: alternative correct answers (full marks) and plausible mistakes (lose points)."""

ALTERNATIVES = {
    "linear_regression_lstsq": '''
def linear_regression_lstsq(X, y):
    # centre the data; the normal equations give w, the means give b
    x_mean, y_mean = X.mean(dim=0), y.mean()
    Xc, yc = X - x_mean, y - y_mean
    w = torch.linalg.solve(Xc.T @ Xc, Xc.T @ yc)
    b = y_mean - x_mean @ w
    return w, b.item()
''',
    "linear_regression_gd": '''
def linear_regression_gd(X, y, lr=0.1, steps=100):
    params = torch.zeros(X.shape[1] + 1, dtype=X.dtype, requires_grad=True)   # [w..., b]
    optimizer = torch.optim.SGD([params], lr=lr)
    for step in range(steps):
        optimizer.zero_grad()
        prediction = X @ params[:-1] + params[-1]
        F.mse_loss(prediction, y).backward()
        optimizer.step()
    return params[:-1].detach().clone(), params[-1].item()
''',
    "minibatches": '''
def minibatches(n, batch_size, shuffle=False, generator=None):
    if shuffle:
        order = torch.randperm(n, generator=generator)
    else:
        order = torch.arange(n, dtype=torch.long)
    batches = []
    start = 0
    while start < n:
        batches.append(order[start:start + batch_size])
        start += batch_size
    return batches
''',
    "SGD": '''
class SGD(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0, weight_decay=0):
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay}
        super(SGD, self).__init__(params, defaults)

    def step(self, closure=None):
        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.data + wd * p.data
                if mu:
                    # a buffer that starts at zero: mu * 0 + g == g on the first step
                    buf = self.state[p].setdefault("velocity", torch.zeros_like(p.data))
                    buf.mul_(mu).add_(g)
                    g = buf
                p.data.add_(-lr * g)
''',
    "Adam": '''
class Adam(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        super(Adam, self).__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                st = self.state[p]
                if len(st) == 0:
                    st["t"], st["m"], st["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                st["t"] += 1
                st["m"].lerp_(g, 1 - b1)
                st["v"].mul_(b2).add_(g * g * (1 - b2))
                step_size = group["lr"] / (1 - b1 ** st["t"])
                denom = st["v"].sqrt() / math.sqrt(1 - b2 ** st["t"]) + group["eps"]
                p.addcdiv_(st["m"], denom, value=-step_size)
''',
    "fit": '''
def fit(model, X, y, optimizer, loss_fn, steps):
    history = []
    for step in range(steps):
        model.zero_grad()          # the model's gradients: the same ones the optimizer holds
        output = model(X)
        loss = loss_fn(output, y)
        loss.backward()
        optimizer.step()
        history.append(float(loss))
    return history
''',
    "warmup_cosine_lr": '''
def warmup_cosine_lr(step, total_steps, base_lr, warmup_steps, min_lr=0.0):
    if warmup_steps > 0 and step <= warmup_steps:
        return float(base_lr) * (step / warmup_steps)
    t = min(step, total_steps)
    fraction = (t - warmup_steps) / (total_steps - warmup_steps)
    return float(min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * fraction)) / 2)
''',
}

MUTANTS = {
    "linear_regression_lstsq": [
        '''
def linear_regression_lstsq(X, y):  # no intercept: the line goes through the origin
    w = torch.linalg.lstsq(X, y[:, None]).solution[:, 0]
    return w, 0.0
''',
        '''
def linear_regression_lstsq(X, y):  # b as a tensor, w as a column
    A = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], dim=1)
    solution = torch.linalg.lstsq(A, y[:, None]).solution
    return solution[:-1], solution[-1, 0]
''',
        '''
def linear_regression_lstsq(X, y):  # centres y but not X
    w = torch.linalg.lstsq(X, (y - y.mean())[:, None]).solution[:, 0]
    return w, float(y.mean())
''',
    ],
    "linear_regression_gd": [
        '''
def linear_regression_gd(X, y, lr=0.1, steps=100):  # summed squared error, not the mean
    w = torch.zeros(X.shape[1], dtype=X.dtype, requires_grad=True)
    b = torch.zeros((), dtype=X.dtype, requires_grad=True)
    for _ in range(steps):
        loss = ((X @ w + b - y) ** 2).sum()
        w.grad = b.grad = None
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
    return w.detach(), b.item()
''',
        '''
def linear_regression_gd(X, y, lr=0.1, steps=100):  # never clears the gradients
    w = torch.zeros(X.shape[1], dtype=X.dtype, requires_grad=True)
    b = torch.zeros((), dtype=X.dtype, requires_grad=True)
    for _ in range(steps):
        loss = ((X @ w + b - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
    return w.detach(), b.item()
''',
        '''
def linear_regression_gd(X, y, lr=0.1, steps=100):  # one step too few
    w = torch.zeros(X.shape[1], dtype=X.dtype, requires_grad=True)
    b = torch.zeros((), dtype=X.dtype, requires_grad=True)
    for _ in range(1, steps):
        loss = ((X @ w + b - y) ** 2).mean()
        w.grad = b.grad = None
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
    return w.detach(), b.item()
''',
        '''
def linear_regression_gd(X, y, lr=0.1, steps=100):  # half the mean squared error
    w = torch.zeros(X.shape[1], dtype=X.dtype, requires_grad=True)
    b = torch.zeros((), dtype=X.dtype, requires_grad=True)
    for _ in range(steps):
        loss = 0.5 * ((X @ w + b - y) ** 2).mean()
        w.grad = b.grad = None
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
    return w.detach(), b.item()
''',
    ],
    "minibatches": [
        '''
def minibatches(n, batch_size, shuffle=False, generator=None):  # drops the last, shorter batch
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    return [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
''',
        '''
def minibatches(n, batch_size, shuffle=False, generator=None):  # ignores the generator
    order = torch.randperm(n) if shuffle else torch.arange(n)
    return list(order.split(batch_size))
''',
        '''
def minibatches(n, batch_size, shuffle=False, generator=None):  # lists of ints, not LongTensors
    order = torch.randperm(n, generator=generator).tolist() if shuffle else list(range(n))
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]
''',
    ],
    "SGD": [
        '''
class SGD(torch.optim.Optimizer):  # hyperparameters kept from __init__: param groups and schedulers ignored
    def __init__(self, params, lr=1e-3, momentum=0, weight_decay=0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad + self.weight_decay * p
                if self.momentum:
                    state = self.state[p]
                    if "buf" in state:
                        state["buf"] = self.momentum * state["buf"] + d_p
                    else:
                        state["buf"] = d_p.clone()
                    d_p = state["buf"]
                p -= self.lr * d_p
''',
        '''
class SGD(torch.optim.Optimizer):  # momentum as a moving average: v = mu v + (1 - mu) g
    def __init__(self, params, lr=1e-3, momentum=0, weight_decay=0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            mu = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad + group["weight_decay"] * p
                if mu:
                    buf = self.state[p].setdefault("buf", torch.zeros_like(p))
                    buf.mul_(mu).add_(d_p, alpha=1 - mu)
                    d_p = buf
                p -= group["lr"] * d_p
''',
        '''
class SGD(torch.optim.Optimizer):  # weight decay applied after the momentum (decoupled)
    def __init__(self, params, lr=1e-3, momentum=0, weight_decay=0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            mu = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad
                if mu:
                    buf = self.state[p].setdefault("buf", torch.zeros_like(p))
                    buf.mul_(mu).add_(d_p)
                    d_p = buf
                p -= group["lr"] * (d_p + group["weight_decay"] * p)
''',
        '''
class SGD(torch.optim.Optimizer):  # hands the work to torch.optim.SGD
    def __init__(self, params, lr=1e-3, momentum=0, weight_decay=0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        self.inner = torch.optim.SGD(self.param_groups, lr=lr, momentum=momentum, weight_decay=weight_decay)

    def step(self, closure=None):
        return self.inner.step(closure)
''',
    ],
    "Adam": [
        '''
class Adam(torch.optim.Optimizer):  # no bias correction
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad + group["weight_decay"] * p
                st = self.state[p]
                if not st:
                    st["m"], st["v"] = torch.zeros_like(p), torch.zeros_like(p)
                st["m"] = b1 * st["m"] + (1 - b1) * g
                st["v"] = b2 * st["v"] + (1 - b2) * g * g
                p -= group["lr"] * st["m"] / (st["v"].sqrt() + group["eps"])
''',
        '''
class Adam(torch.optim.Optimizer):  # eps inside the square root
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad + group["weight_decay"] * p
                st = self.state[p]
                if not st:
                    st["t"], st["m"], st["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                st["t"] += 1
                st["m"] = b1 * st["m"] + (1 - b1) * g
                st["v"] = b2 * st["v"] + (1 - b2) * g * g
                m_hat = st["m"] / (1 - b1 ** st["t"])
                v_hat = st["v"] / (1 - b2 ** st["t"])
                p -= group["lr"] * m_hat / torch.sqrt(v_hat + group["eps"])
''',
        '''
class Adam(torch.optim.Optimizer):  # AdamW's decoupled weight decay
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                st = self.state[p]
                if not st:
                    st["t"], st["m"], st["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                st["t"] += 1
                st["m"] = b1 * st["m"] + (1 - b1) * g
                st["v"] = b2 * st["v"] + (1 - b2) * g * g
                m_hat = st["m"] / (1 - b1 ** st["t"])
                v_hat = st["v"] / (1 - b2 ** st["t"])
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p -= group["lr"] * m_hat / (v_hat.sqrt() + group["eps"])
''',
        '''
class Adam(torch.optim.Optimizer):  # one step counter for all parameters
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.t = 0

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.t += 1
                g = p.grad + group["weight_decay"] * p
                st = self.state[p]
                if not st:
                    st["m"], st["v"] = torch.zeros_like(p), torch.zeros_like(p)
                st["m"] = b1 * st["m"] + (1 - b1) * g
                st["v"] = b2 * st["v"] + (1 - b2) * g * g
                m_hat = st["m"] / (1 - b1 ** self.t)
                v_hat = st["v"] / (1 - b2 ** self.t)
                p -= group["lr"] * m_hat / (v_hat.sqrt() + group["eps"])
''',
    ],
    "fit": [
        '''
def fit(model, X, y, optimizer, loss_fn, steps):  # forgets zero_grad: gradients accumulate
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
''',
        '''
def fit(model, X, y, optimizer, loss_fn, steps):  # `optimizer.zero_grad` without the call: a no-op
    losses = []
    for _ in range(steps):
        optimizer.zero_grad
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
''',
        '''
def fit(model, X, y, optimizer, loss_fn, steps):  # clears at the end: the first step uses stale gradients
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses
''',
        '''
def fit(model, X, y, optimizer, loss_fn, steps):  # keeps the loss tensors
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(loss)
    return losses
''',
    ],
    "warmup_cosine_lr": [
        '''
def warmup_cosine_lr(step, total_steps, base_lr, warmup_steps, min_lr=0.0):  # cosine over all steps
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if step >= total_steps:
        return float(min_lr)
    return min_lr + (base_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * step / total_steps))
''',
        '''
def warmup_cosine_lr(step, total_steps, base_lr, warmup_steps, min_lr=0.0):  # decays to 0, not min_lr
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if step >= total_steps:
        return 0.0
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return base_lr * 0.5 * (1 + math.cos(math.pi * progress))
''',
        '''
def warmup_cosine_lr(step, total_steps, base_lr, warmup_steps, min_lr=0.0):  # no clamp after total_steps
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + (base_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
''',
        '''
def warmup_cosine_lr(step, total_steps, base_lr, warmup_steps, min_lr=0.0):  # warm-up off by one
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return float(min_lr)
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + (base_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
''',
    ],
}


# Answers that delegate to the course's own reference implementation: each must lose the
# exercise's points (read from the answer's text, or refused at run time when the name is computed).

MUTANTS["linear_regression_lstsq"].append("""def linear_regression_lstsq(*args, **kwargs):
    from course.checks.optim import lstsq_reference
    return lstsq_reference(*args, **kwargs)""")
MUTANTS["linear_regression_gd"].append("""import course.checks.optim as checks

def linear_regression_gd(*args, **kwargs):
    return checks.gd_reference(*args, **kwargs)""")
MUTANTS["warmup_cosine_lr"].append("""import sys

def warmup_cosine_lr(*args, **kwargs):  # names computed at run time: only the run-time layer sees it
    module = getattr(sys, "mod" + "ules")["cour" + "se.checks.optim"]
    return getattr(module, "schedule_" + "reference")(*args, **kwargs)""")


# The tightened contract: Optimizer itself, per-parameter state, late parameters, state_dict round trips.
MUTANTS["SGD"] += [
    """class SGD(torch.optim.SGD):  # borrows torch's update: subclasses torch's SGD
    def __init__(self, params, lr=1e-3, momentum=0, weight_decay=0):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)""",
    """class SGD(torch.optim.Optimizer):  # momentum buffers in a dict of its own: lost by state_dict()
    def __init__(self, params, lr=1e-3, momentum=0, weight_decay=0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        self.buffers = {}

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad + group["weight_decay"] * p
                if group["momentum"]:
                    if p not in self.buffers:
                        self.buffers[p] = d_p.clone()
                    else:
                        self.buffers[p].mul_(group["momentum"]).add_(d_p)
                    d_p = self.buffers[p]
                p.add_(d_p, alpha=-group["lr"])""",
]
MUTANTS["Adam"] += [
    """class Adam(torch.optim.Optimizer):  # one step counter for the whole optimizer
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.t = 0

    @torch.no_grad()
    def step(self, closure=None):
        self.t += 1
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad + group["weight_decay"] * p
                state = self.state[p]
                if not state:
                    state["m"], state["v"] = torch.zeros_like(p), torch.zeros_like(p)
                state["m"].mul_(b1).add_(g, alpha=1 - b1)
                state["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
                m_hat = state["m"] / (1 - b1 ** self.t)
                v_hat = state["v"] / (1 - b2 ** self.t)
                p.sub_(group["lr"] * m_hat / (v_hat.sqrt() + group["eps"]))""",
    """class Adam(torch.optim.Optimizer):  # moments kept outside self.state: a reload starts from zero
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.moments = {}

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad + group["weight_decay"] * p
                m, v, t = self.moments.get(p, (torch.zeros_like(p), torch.zeros_like(p), 0))
                t += 1
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * g * g
                self.moments[p] = (m, v, t)
                p.sub_(group["lr"] * (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + group["eps"]))""",
    """class Adam(torch.optim.Adam):  # torch's Adam under another name
    pass""",
]
