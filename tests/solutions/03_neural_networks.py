"""03_neural_networks: alternative correct answers (full marks) and plausible mistakes (lose points)."""

ALTERNATIVES = {
    "sigmoid": '''
def sigmoid(x):
    # sigma(x) = (1 + tanh(x / 2)) / 2: no exponential at all
    return (1 + torch.tanh(x / 2)) / 2
''',
    "softmax": '''
def shift_by_max(x, dim):
    """x minus its maximum along dim (a helper: the checks follow it too)."""
    return x - x.max(dim=dim, keepdim=True).values


def softmax(x, dim=-1):
    # exp(log-probabilities): computed in log space, then exponentiated
    shifted = shift_by_max(x, dim)
    return torch.exp(shifted - shifted.exp().sum(dim, keepdim=True).log())
''',
    "log_softmax": '''
def log_softmax(x, dim=-1):
    m = x.max(dim=dim, keepdim=True).values.detach()
    return x - (m + torch.log(torch.exp(x - m).sum(dim=dim, keepdim=True)))
''',
    "relu": '''
def relu(x):
    return torch.where(x > 0, x, torch.zeros_like(x))
''',
    "leaky_relu": '''
def leaky_relu(x, negative_slope=0.01):
    return x.clamp(min=0) + negative_slope * x.clamp(max=0)
''',
    "collapse_linear": '''
def collapse_linear(layers):
    layers = list(layers)
    n_in = layers[0].in_features
    dtype = layers[0].weight.dtype
    with torch.no_grad():
        # push the identity (for W) and zero (for b) through the stack
        eye = torch.eye(n_in, dtype=dtype)
        b = torch.zeros(1, n_in, dtype=dtype)
        W_t = eye
        for layer in layers:
            W_t = W_t @ layer.weight.T
            b = layer(b)
        out = nn.Linear(n_in, layers[-1].out_features).to(dtype)
        out.weight = nn.Parameter(W_t.T.clone())
        out.bias = nn.Parameter(b[0].clone())
    return out
''',
    "gradient_norms": '''
def gradient_norms(activation, depth, width=32, seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential()
    for i in range(depth):
        model.append(nn.Linear(width, width))
        model.append({"sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "relu": nn.ReLU()}[activation])
    x = torch.randn(64, width)
    loss = model(x).sum()
    loss.backward()
    norms = []
    for module in model.modules():
        if isinstance(module, nn.Linear):
            norms.append(float(module.weight.grad.pow(2).sum().sqrt()))
    return norms
''',
    "perceptron_fit": '''
def perceptron_fit(X, y, epochs=100, lr=1.0):
    n, d = X.shape
    w = X.new_zeros(d)
    b = 0.0
    epoch = 0
    converged = False
    while epoch < epochs and not converged:
        converged = True
        for i in range(n):
            label = y[i].item()
            if label * ((w * X[i]).sum().item() + b) <= 0:
                w += lr * label * X[i]
                b += lr * label
                converged = False
        epoch += 1
    return w, float(b)
''',
    "Linear": '''
class Linear(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super(Linear, self).__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features))
        else:
            self.register_parameter("bias", None)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))    # what nn.Linear does: bound 1/sqrt(in)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -1 / math.sqrt(in_features), 1 / math.sqrt(in_features))

    def forward(self, x):
        y = torch.einsum("...i,oi->...o", x, self.weight)
        if self.bias is not None:
            y = y + self.bias
        return y
''',
    "MLP": '''
class MLP(nn.Module):
    def __init__(self, in_features, hidden, out_features, activation=nn.ReLU):
        super().__init__()
        self.layers = nn.Sequential()
        previous = in_features
        for size in hidden:
            self.layers.append(nn.Linear(previous, size))
            self.layers.append(activation())
            previous = size
        self.layers.append(nn.Linear(previous, out_features))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
''',
    "mlp_functional": '''
def mlp_functional(x, params, activation=F.relu):
    *hidden, (w_last, b_last) = params
    for w, b in hidden:
        x = activation(x @ w.T + b)
    return x @ w_last.T + b_last
''',
    "count_parameters": '''
def count_parameters(model, trainable_only=True):
    seen = set()
    total = 0
    for _, p in model.named_parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += int(torch.tensor(p.shape).prod().item()) if p.dim() else 1
    return total
''',
    "encode_categorical": '''
def encode_categorical(values):
    vocabulary = sorted(dict.fromkeys(values))
    indices = torch.empty(len(values), dtype=torch.int64)
    for i, v in enumerate(values):
        indices[i] = vocabulary.index(v)
    return indices, vocabulary
''',
    "fit_xor": '''
def fit_xor(seed=0):
    torch.manual_seed(seed)
    X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([0, 1, 1, 0])

    class XorNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(2, 16)
            self.out = nn.Linear(16, 2)

        def forward(self, x):
            return self.out(torch.tanh(self.hidden(x)))

    model = XorNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(200):
        loss = F.cross_entropy(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model
''',
}

MUTANTS = {
    "sigmoid": [
        '''
def sigmoid(x):  # exp(x) / (1 + exp(x)): inf / inf = nan for large x
    e = torch.exp(x)
    return e / (1 + e)
''',
        '''
def sigmoid(x):  # the forbidden shortcut
    return torch.sigmoid(x)
''',
        '''
def sigmoid(x):  # sign error in the exponent
    return 1 / (1 + torch.exp(x))
''',
    ],
    "softmax": [
        '''
def softmax(x, dim=-1):  # no max subtracted: overflows for large logits
    e = x.exp()
    return e / e.sum(dim=dim, keepdim=True)
''',
        '''
def softmax(x, dim=-1):  # subtracts the global max, not each row's: rows far apart underflow to 0/0
    e = (x - x.max()).exp()
    return e / e.sum(dim=dim, keepdim=True)
''',
        '''
def softmax(x, dim=-1):  # ignores dim: always the last dimension
    e = (x - x.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)
''',
    ],
    "log_softmax": [
        '''
def log_softmax(x, dim=-1):  # log of the softmax: -inf where the probability underflows
    shifted = x - x.amax(dim=dim, keepdim=True)
    p = shifted.exp() / shifted.exp().sum(dim=dim, keepdim=True)
    return p.log()
''',
        '''
def log_softmax(x, dim=-1):  # forgets to add the max back inside the log-sum-exp
    m = x.amax(dim=dim, keepdim=True)
    return x - (x - m).exp().sum(dim=dim, keepdim=True).log()
''',
        '''
def log_softmax(x, dim=-1):  # the forbidden shortcut
    return x - torch.logsumexp(x, dim=dim, keepdim=True)
''',
    ],
    "relu": [
        '''
def relu(x):  # in place: changes the caller's tensor
    return x.clamp_(min=0)
''',
        '''
def relu(x):  # multiplies by a mask: -inf * 0 = nan, and integers become floats
    return x * (x > 0).float()
''',
        '''
def relu(x):  # the forbidden shortcut
    return F.relu(x)
''',
    ],
    "leaky_relu": [
        '''
def leaky_relu(x, negative_slope=0.01):  # max(x, a*x) is leaky ReLU only when 0 <= a <= 1
    return torch.maximum(x, negative_slope * x)
''',
        '''
def leaky_relu(x, negative_slope=0.01):  # the slope leaks into the positive side too
    return x.clamp(min=0) + negative_slope * x
''',
        '''
def leaky_relu(x, negative_slope=0.01):  # ignores negative_slope
    return torch.where(x > 0, x, 0.01 * x)
''',
    ],
    "collapse_linear": [
        '''
def collapse_linear(layers):  # only the weights: the biases are dropped
    layers = list(layers)
    W = layers[0].weight.detach()
    for layer in layers[1:]:
        W = layer.weight.detach() @ W
    out = nn.Linear(layers[0].in_features, layers[-1].out_features, bias=False, dtype=W.dtype)
    with torch.no_grad():
        out.weight.copy_(W)
    return out
''',
        '''
def collapse_linear(layers):  # biases simply added up, not pushed through the later weights
    layers = list(layers)
    W = layers[0].weight.detach()
    b = torch.zeros(layers[-1].out_features, dtype=W.dtype)
    for layer in layers[1:]:
        W = layer.weight.detach() @ W
    for layer in layers:
        if layer.bias is not None and layer.bias.shape == b.shape:
            b = b + layer.bias.detach()
    out = nn.Linear(layers[0].in_features, layers[-1].out_features, dtype=W.dtype)
    with torch.no_grad():
        out.weight.copy_(W)
        out.bias.copy_(b)
    return out
''',
        '''
def collapse_linear(layers):  # crashes on a layer without bias
    layers = list(layers)
    W, b = layers[0].weight.detach(), layers[0].bias.detach()
    for layer in layers[1:]:
        W = layer.weight.detach() @ W
        b = layer.weight.detach() @ b + layer.bias.detach()
    out = nn.Linear(layers[0].in_features, layers[-1].out_features, dtype=W.dtype)
    with torch.no_grad():
        out.weight.copy_(W)
        out.bias.copy_(b)
    return out
''',
    ],
    "gradient_norms": [
        '''
def gradient_norms(activation, depth, width=32, seed=0):  # draws x before building the model
    make = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    torch.manual_seed(seed)
    x = torch.randn(64, width)
    model = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), make())])
    model(x).sum().backward()
    return [layer.weight.grad.norm().item() for layer in model if isinstance(layer, nn.Linear)]
''',
        '''
def gradient_norms(activation, depth, width=32, seed=0):  # from the output back to the input
    make = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    torch.manual_seed(seed)
    model = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), make())])
    x = torch.randn(64, width)
    model(x).sum().backward()
    return [layer.weight.grad.norm().item() for layer in model if isinstance(layer, nn.Linear)][::-1]
''',
        '''
def gradient_norms(activation, depth, width=32, seed=0):  # mean instead of sum: every norm 1/(64*width) too small
    make = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    torch.manual_seed(seed)
    model = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), make())])
    x = torch.randn(64, width)
    model(x).mean().backward()
    return [layer.weight.grad.norm().item() for layer in model if isinstance(layer, nn.Linear)]
''',
    ],
    "perceptron_fit": [
        '''
def perceptron_fit(X, y, epochs=100, lr=1.0):  # a mistake only when strictly < 0: from w = 0 nothing is ever learned
    w = torch.zeros(X.shape[1], dtype=X.dtype)
    b = 0.0
    for _ in range(epochs):
        mistakes = 0
        for xi, yi in zip(X, y.tolist()):
            if yi * (float(xi @ w) + b) < 0:
                w = w + lr * yi * xi
                b = b + lr * yi
                mistakes += 1
        if mistakes == 0:
            break
    return w, float(b)
''',
        '''
def perceptron_fit(X, y, epochs=100, lr=1.0):  # never updates the bias
    w = torch.zeros(X.shape[1], dtype=X.dtype)
    for _ in range(epochs):
        mistakes = 0
        for xi, yi in zip(X, y.tolist()):
            if yi * float(xi @ w) <= 0:
                w = w + lr * yi * xi
                mistakes += 1
        if mistakes == 0:
            break
    return w, 0.0
''',
        '''
def perceptron_fit(X, y, epochs=100, lr=1.0):  # ignores the learning rate
    w = torch.zeros(X.shape[1], dtype=X.dtype)
    b = 0.0
    for _ in range(epochs):
        mistakes = 0
        for xi, yi in zip(X, y.tolist()):
            if yi * (float(xi @ w) + b) <= 0:
                w = w + yi * xi
                b = b + yi
                mistakes += 1
        if mistakes == 0:
            break
    return w, float(b)
''',
    ],
    "Linear": [
        '''
class Linear(nn.Module):  # standard-normal initialisation: far outside ±1/sqrt(in)
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.randn(out_features)) if bias else None

    def forward(self, x):
        out = x @ self.weight.T
        return out if self.bias is None else out + self.bias
''',
        '''
class Linear(nn.Module):  # weight stored as [in, out]: nn.Linear's state_dict does not load
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        bound = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound)) if bias else None

    def forward(self, x):
        out = x @ self.weight
        return out if self.bias is None else out + self.bias
''',
        '''
class Linear(nn.Module):  # the forbidden shortcut
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        inner = nn.Linear(in_features, out_features, bias=bias)
        self.weight, self.bias = inner.weight, inner.bias

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)
''',
        '''
class Linear(nn.Module):  # bound 1/in instead of 1/sqrt(in)
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        bound = 1 / in_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound)) if bias else None

    def forward(self, x):
        out = x @ self.weight.T
        return out if self.bias is None else out + self.bias
''',
    ],
    "MLP": [
        '''
class MLP(nn.Module):  # an activation after the last Linear too
    def __init__(self, in_features, hidden, out_features, activation=nn.ReLU):
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        modules = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            modules += [nn.Linear(a, b), activation()]
        self.layers = nn.Sequential(*modules)

    def forward(self, x):
        return self.layers(x)
''',
        '''
class MLP(nn.Module):  # always ReLU, whatever activation is passed
    def __init__(self, in_features, hidden, out_features, activation=nn.ReLU):
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        modules = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            modules += [nn.Linear(a, b), nn.ReLU()]
        self.layers = nn.Sequential(*modules[:-1])

    def forward(self, x):
        return self.layers(x)
''',
        '''
class MLP(nn.Module):  # forward adds a softmax the loss does not expect
    def __init__(self, in_features, hidden, out_features, activation=nn.ReLU):
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        modules = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            modules += [nn.Linear(a, b), activation()]
        self.layers = nn.Sequential(*modules[:-1])

    def forward(self, x):
        return torch.softmax(self.layers(x), dim=-1)
''',
    ],
    "mlp_functional": [
        '''
def mlp_functional(x, params, activation=F.relu):  # activation after the last layer too
    for weight, bias in params:
        x = activation(F.linear(x, weight, bias))
    return x
''',
        '''
def mlp_functional(x, params, activation=F.relu):  # builds nn modules
    layers = []
    for weight, bias in params:
        layer = nn.Linear(weight.shape[1], weight.shape[0])
        layer.weight, layer.bias = nn.Parameter(weight), nn.Parameter(bias)
        layers += [layer, nn.ReLU()]
    return nn.Sequential(*layers[:-1])(x)
''',
        '''
def mlp_functional(x, params, activation=F.relu):  # always ReLU
    for i, (weight, bias) in enumerate(params):
        x = x @ weight.T + bias
        if i < len(params) - 1:
            x = torch.relu(x)
    return x
''',
    ],
    "count_parameters": [
        '''
def count_parameters(model, trainable_only=True):  # state_dict: buffers and tied weights counted too
    return sum(t.numel() for t in model.state_dict().values())
''',
        '''
def count_parameters(model, trainable_only=True):  # ignores trainable_only
    return sum(p.numel() for p in model.parameters())
''',
        '''
def count_parameters(model, trainable_only=True):  # counts tensors, not elements
    return len([p for p in model.parameters() if p.requires_grad or not trainable_only])
''',
        '''
def count_parameters(model, trainable_only=True):  # module by module: a shared layer counts twice
    return sum(p.numel() for m in model.modules() for p in m.parameters(recurse=False)
               if p.requires_grad or not trainable_only)
''',
    ],
    "encode_categorical": [
        '''
def encode_categorical(values):  # vocabulary in order of first appearance, not sorted
    vocabulary = list(dict.fromkeys(values))
    return torch.tensor([vocabulary.index(v) for v in values], dtype=torch.long), vocabulary
''',
        '''
def encode_categorical(values):  # torch.tensor([]) is float32: the empty case comes back as floats
    vocabulary = sorted(set(values))
    return torch.tensor([vocabulary.index(v) for v in values]), vocabulary
''',
        '''
def encode_categorical(values):  # indices from 1, keeping 0 for padding: not what was asked
    vocabulary = sorted(set(values))
    return torch.tensor([vocabulary.index(v) + 1 for v in values], dtype=torch.long), vocabulary
''',
    ],
    "fit_xor": [
        '''
def fit_xor(seed=0):  # no hidden layer: a linear model cannot learn XOR
    torch.manual_seed(seed)
    X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([0, 1, 1, 0])
    model = nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(150):
        optimizer.zero_grad()
        F.cross_entropy(model(X), y).backward()
        optimizer.step()
    return model
''',
        '''
def fit_xor(seed=0):  # two layers but no activation between them: still linear (E2)
    torch.manual_seed(seed)
    X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([0, 1, 1, 0])
    model = nn.Sequential(nn.Linear(2, 8), nn.Linear(8, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(150):
        optimizer.zero_grad()
        F.cross_entropy(model(X), y).backward()
        optimizer.step()
    return model
''',
        '''
def fit_xor(seed=0):  # forgets optimizer.step(): the model is never trained
    torch.manual_seed(seed)
    X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([0, 1, 1, 0])
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(150):
        optimizer.zero_grad()
        F.cross_entropy(model(X), y).backward()
    return model
''',
    ],
}


# Answers that delegate to the course's own reference implementation: each must lose the
# exercise's points (read from the answer's text, or refused at run time when the name is computed).

MUTANTS["sigmoid"].append("""def sigmoid(*args, **kwargs):
    from course.checks.networks import reference_sigmoid
    return reference_sigmoid(*args, **kwargs)""")
MUTANTS["softmax"].append("""import course.checks.networks as checks

def softmax(*args, **kwargs):
    return checks.reference_softmax(*args, **kwargs)""")
MUTANTS["log_softmax"].append("""import sys

def log_softmax(*args, **kwargs):  # names computed at run time: only the run-time layer sees it
    module = getattr(sys, "mod" + "ules")["cour" + "se.checks.networks"]
    return getattr(module, "reference_" + "log_softmax")(*args, **kwargs)""")
MUTANTS["relu"].append("""def relu(*args, **kwargs):
    from course.checks.networks import reference_relu
    return reference_relu(*args, **kwargs)""")
MUTANTS["leaky_relu"].append("""import course.checks.networks as checks

def leaky_relu(*args, **kwargs):
    return checks.reference_leaky_relu(*args, **kwargs)""")
MUTANTS["gradient_norms"].append("""import sys

def gradient_norms(*args, **kwargs):  # names computed at run time: only the run-time layer sees it
    module = getattr(sys, "mod" + "ules")["cour" + "se.checks.networks"]
    return getattr(module, "reference_gr" + "adient_norms")(*args, **kwargs)""")
MUTANTS["perceptron_fit"].append("""def perceptron_fit(*args, **kwargs):
    from course.checks.networks import reference_perceptron
    return reference_perceptron(*args, **kwargs)""")


# The lesson's point is a stable gradient: forwards that are finite, backwards that are not.
MUTANTS["sigmoid"] += [
    """def sigmoid(x):  # the textbook one-liner: 0 at -1e4, but its gradient is nan there
    return 1 / (1 + torch.exp(-x))""",
    """def sigmoid(x):  # where() over two unstable branches: each branch is differentiated everywhere
    return torch.where(x >= 0, 1 / (1 + torch.exp(-x)), torch.exp(x) / (1 + torch.exp(x)))""",
    """def sigmoid(x):  # through log1p: exp(-log1p(exp(-x))) is finite forwards, nan backwards
    return torch.exp(-torch.log1p(torch.exp(-x)))""",
    """def sigmoid(x):  # stable everywhere but at 0: autograd's |x| has gradient 0 there
    e = torch.exp(-x.abs())
    return torch.where(x >= 0, 1 / (1 + e), e / (1 + e))""",
]
