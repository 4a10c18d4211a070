"""02_autograd: alternative correct answers (full marks) and plausible mistakes (lose points)."""

ALTERNATIVES = {
    "derivative": '''
def derivative(f, x0):
    x = torch.tensor([x0], dtype=torch.float64).squeeze(0).requires_grad_()
    (g,) = torch.autograd.grad(f(x), [x])
    return float(g)
''',
    "elementwise_grad": '''
def elementwise_grad(f, x):
    leaf = x.clone().detach()
    leaf.requires_grad = True
    y = f(leaf)
    y.backward(torch.ones_like(y))   # the gradient of y.sum(): a vector-Jacobian product with ones
    return leaf.grad
''',
    "jacobian": '''
def jacobian(f, x):
    x = x.detach().requires_grad_()
    y = f(x)
    J = torch.zeros(y.numel(), x.numel(), dtype=x.dtype)
    for i in range(y.numel()):
        e = torch.zeros_like(y)
        e[i] = 1.0
        (row,) = torch.autograd.grad(y, x, grad_outputs=e, retain_graph=True, allow_unused=True)
        if row is not None:
            J[i] = row
    return J
''',
    "hvp": '''
def hvp(f, x, v):
    x = x.detach().requires_grad_()
    g = torch.autograd.grad(f(x), x, create_graph=True)[0]
    gv = (g * v).sum()
    if gv.grad_fn is None:
        return torch.zeros_like(x)
    hv = torch.autograd.grad(gv, x, allow_unused=True, materialize_grads=True)[0]
    return hv
''',
    "Sigmoid": '''
class Sigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        # the stable form: never exponentiates a large positive number
        e = torch.exp(-x.abs())
        out = torch.where(x >= 0, 1 / (1 + e), e / (1 + e))
        ctx.out = out
        return out

    @staticmethod
    def backward(ctx, grad_output):
        s = ctx.out
        return grad_output * (s - s * s)
''',
    "RoundSTE": '''
class RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return (x + 0.5).floor()      # equal to round() away from .5 ties

    @staticmethod
    def backward(ctx, g):
        return g.clone()
''',
    "Value": '''
import math

class Value:
    """Every operation is written out, and backward sorts the graph without recursion."""

    def __init__(self, data, _children=()):
        self.data = float(data)
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = tuple(_children)

    @staticmethod
    def _wrap(x):
        return x if isinstance(x, Value) else Value(x)

    def _unary(self, data, local):
        out = Value(data, (self,))
        def _backward():
            self.grad += local * out.grad
        out._backward = _backward
        return out

    def __add__(self, other):
        other = Value._wrap(other)
        out = Value(self.data + other.data, (self, other))
        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __sub__(self, other):
        other = Value._wrap(other)
        out = Value(self.data - other.data, (self, other))
        def _backward():
            self.grad += out.grad
            other.grad -= out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = Value._wrap(other)
        out = Value(self.data * other.data, (self, other))
        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __truediv__(self, other):
        other = Value._wrap(other)
        out = Value(self.data / other.data, (self, other))
        def _backward():
            self.grad += out.grad / other.data
            other.grad -= self.data / other.data ** 2 * out.grad
        out._backward = _backward
        return out

    def __radd__(self, other):
        return Value._wrap(other) + self

    def __rsub__(self, other):
        return Value._wrap(other) - self

    def __rmul__(self, other):
        return Value._wrap(other) * self

    def __rtruediv__(self, other):
        return Value._wrap(other) / self

    def __neg__(self):
        return self._unary(-self.data, -1.0)

    def __pow__(self, k):
        return self._unary(self.data ** k, k * self.data ** (k - 1))

    def relu(self):
        return self._unary(max(self.data, 0.0), 1.0 if self.data > 0 else 0.0)

    def tanh(self):
        t = math.tanh(self.data)
        return self._unary(t, 1 - t ** 2)

    def exp(self):
        e = math.exp(self.data)
        return self._unary(e, e)

    def backward(self):
        # Kahn's algorithm: a node is ready once every node that uses it is done
        users = {}
        stack, seen = [self], {id(self)}
        nodes = []
        while stack:
            node = stack.pop()
            nodes.append(node)
            for child in node._prev:
                users[id(child)] = users.get(id(child), 0) + 1
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append(child)
        self.grad = 1.0
        ready = [self]
        while ready:
            node = ready.pop()
            node._backward()
            for child in node._prev:
                users[id(child)] -= 1
                if users[id(child)] == 0:
                    ready.append(child)
''',
    "dynamic_iterate": '''
def dynamic_iterate(x, w, tol=1e-3, max_steps=50):
    y = x
    for step in range(1, max_steps + 1):
        previous, y = y, (w * y).tanh()
        if torch.all((y - previous).abs() < tol):
            break
    return y, step
''',
    "no_grad_forward": '''
def no_grad_forward(model, x):
    with torch.inference_mode():
        out = model(x)
    return out
''',
}

MUTANTS = {
    "derivative": [
        '''
def derivative(f, x0):  # float32: too few digits
    x = torch.tensor(float(x0), requires_grad=True)
    f(x).backward()
    return x.grad.item()
''',
        '''
def derivative(f, x0):  # central finite differences instead of autograd
    h = 1e-6
    x = torch.tensor(float(x0), dtype=torch.float64)
    return ((f(x + h) - f(x - h)) / (2 * h)).item()
''',
        '''
def derivative(f, x0):  # returns the gradient tensor, not a float
    x = torch.tensor(float(x0), dtype=torch.float64, requires_grad=True)
    f(x).backward()
    return x.grad
''',
    ],
    "elementwise_grad": [
        '''
def elementwise_grad(f, x):  # backward on x itself: fills (and accumulates into) x.grad
    x.requires_grad_(True)
    f(x).sum().backward()
    return x.grad
''',
        '''
def elementwise_grad(f, x):  # mean instead of sum
    leaf = x.detach().requires_grad_(True)
    return torch.autograd.grad(f(leaf).mean(), leaf)[0]
''',
        '''
def elementwise_grad(f, x):  # resets x.grad to None afterwards, clobbering a gradient that was there
    x.requires_grad_(True)
    f(x).sum().backward()
    g = x.grad.clone()
    x.grad = None
    return g
''',
    ],
    "jacobian": [
        '''
def jacobian(f, x):  # rows and columns swapped: [n, m]
    x = x.detach().requires_grad_(True)
    y = f(x)
    cols = [torch.autograd.grad(y[i], x, retain_graph=True)[0] for i in range(y.shape[0])]
    return torch.stack(cols, dim=1)
''',
        '''
def jacobian(f, x):  # backward into x.grad without zeroing it: rows accumulate
    x = x.detach().requires_grad_(True)
    y = f(x)
    rows = []
    for i in range(y.shape[0]):
        y[i].backward(retain_graph=True)
        rows.append(x.grad.clone())
    return torch.stack(rows)
''',
        '''
def jacobian(f, x):  # the forbidden shortcut
    return torch.autograd.functional.jacobian(f, x)
''',
    ],
    "hvp": [
        '''
def hvp(f, x, v):  # the diagonal of the Hessian times v: wrong when variables interact
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)
    if not g.requires_grad:
        return torch.zeros_like(x)
    diag = torch.stack([torch.autograd.grad(g[i], x, retain_graph=True)[0][i] for i in range(len(x))])
    return diag * v
''',
        '''
def hvp(f, x, v):  # crashes on a linear f (its gradient has no grad_fn)
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)
    return torch.autograd.grad(g @ v, x)[0]
''',
        '''
def hvp(f, x, v):  # the gradient projected on v, not the Hessian
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x)
    return g * v
''',
    ],
    "Sigmoid": [
        '''
class Sigmoid(torch.autograd.Function):  # saves the input and recomputes sigmoid in backward
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 1 / (1 + torch.exp(-x))

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = 1 / (1 + torch.exp(-x))
        return grad_output * s * (1 - s)
''',
        '''
class Sigmoid(torch.autograd.Function):  # forgets to multiply by grad_output
    @staticmethod
    def forward(ctx, x):
        out = 1 / (1 + torch.exp(-x))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (out,) = ctx.saved_tensors
        return out * (1 - out)
''',
        '''
class Sigmoid(torch.autograd.Function):  # derivative written as s instead of s(1 - s)
    @staticmethod
    def forward(ctx, x):
        out = 1 / (1 + torch.exp(-x))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (out,) = ctx.saved_tensors
        return grad_output * out
''',
    ],
    "RoundSTE": [
        '''
class RoundSTE(torch.autograd.Function):  # the true derivative of round: zero, nothing learns
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad_output):
        return torch.zeros_like(grad_output)
''',
        '''
class RoundSTE(torch.autograd.Function):  # ones instead of the incoming gradient
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad_output):
        return torch.ones_like(grad_output)
''',
        '''
class RoundSTE(torch.autograd.Function):  # truncates toward zero instead of rounding
    @staticmethod
    def forward(ctx, x):
        return x.trunc()

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output
''',
    ],
    "Value": [
        '''
import math

class Value:  # no topological sort: each node recursively pushes to its children
    def __init__(self, data, _children=()):
        self.data = float(data)
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = tuple(_children)

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))
        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))
        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, k):
        out = Value(self.data ** k, (self,))
        def _backward():
            self.grad += k * self.data ** (k - 1) * out.grad
        out._backward = _backward
        return out

    def relu(self):
        out = Value(max(self.data, 0.0), (self,))
        def _backward():
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,))
        def _backward():
            self.grad += (1 - t * t) * out.grad
        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,))
        def _backward():
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def _propagate(self):
        self._backward()
        for child in self._prev:
            child._propagate()

    def backward(self):
        self.grad = 1.0
        self._propagate()

    def __neg__(self): return self * -1
    def __radd__(self, other): return self + other
    def __sub__(self, other): return self + (-other)
    def __rsub__(self, other): return (-self) + other
    def __rmul__(self, other): return self * other
    def __truediv__(self, other): return self * (other if isinstance(other, Value) else Value(other)) ** -1
    def __rtruediv__(self, other): return self ** -1 * other
''',
        '''
import math

class Value:  # `=` instead of `+=`: a node used twice keeps only one gradient
    def __init__(self, data, _children=()):
        self.data = float(data)
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = tuple(_children)

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))
        def _backward():
            self.grad = out.grad
            other.grad = out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))
        def _backward():
            self.grad = other.data * out.grad
            other.grad = self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, k):
        out = Value(self.data ** k, (self,))
        def _backward():
            self.grad = k * self.data ** (k - 1) * out.grad
        out._backward = _backward
        return out

    def relu(self):
        out = Value(max(self.data, 0.0), (self,))
        def _backward():
            self.grad = (out.data > 0) * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,))
        def _backward():
            self.grad = (1 - t * t) * out.grad
        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,))
        def _backward():
            self.grad = out.data * out.grad
        out._backward = _backward
        return out

    def backward(self):
        order, seen = [], set()
        def visit(node):
            if node not in seen:
                seen.add(node)
                for child in node._prev:
                    visit(child)
                order.append(node)
        visit(self)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()

    def __neg__(self): return self * -1
    def __radd__(self, other): return self + other
    def __sub__(self, other): return self + (-other)
    def __rsub__(self, other): return (-self) + other
    def __rmul__(self, other): return self * other
    def __truediv__(self, other): return self * (other if isinstance(other, Value) else Value(other)) ** -1
    def __rtruediv__(self, other): return self ** -1 * other
''',
        '''
import math

class Value:  # the reflected operators get the order wrong: 1 - a computes a - 1, 3 / a computes a / 3
    def __init__(self, data, _children=()):
        self.data = float(data)
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = tuple(_children)

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))
        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))
        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, k):
        out = Value(self.data ** k, (self,))
        def _backward():
            self.grad += k * self.data ** (k - 1) * out.grad
        out._backward = _backward
        return out

    def relu(self):
        out = Value(max(self.data, 0.0), (self,))
        def _backward():
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,))
        def _backward():
            self.grad += (1 - t * t) * out.grad
        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,))
        def _backward():
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def backward(self):
        order, seen = [], set()
        def visit(node):
            if node not in seen:
                seen.add(node)
                for child in node._prev:
                    visit(child)
                order.append(node)
        visit(self)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()

    def __neg__(self): return self * -1
    def __radd__(self, other): return self + other
    def __sub__(self, other): return self + (-other)
    def __rsub__(self, other): return self - other
    def __rmul__(self, other): return self * other
    def __truediv__(self, other): return self * (other if isinstance(other, Value) else Value(other)) ** -1
    def __rtruediv__(self, other): return self / other
''',
    ],
    "dynamic_iterate": [
        '''
def dynamic_iterate(x, w, tol=1e-3, max_steps=50):  # returns the value before the last update
    y = x
    for steps in range(1, max_steps + 1):
        y_new = torch.tanh(w * y)
        if (y_new - y).abs().max() < tol:
            break
        y = y_new
    return y, steps
''',
        '''
def dynamic_iterate(x, w, tol=1e-3, max_steps=50):  # detaches inside the loop: no gradient
    y, steps = x, 0
    while steps < max_steps:
        y_new = torch.tanh(w * y).detach()
        steps += 1
        done = (y_new - y).abs().max() < tol
        y = y_new
        if done:
            break
    return y, steps
''',
        '''
def dynamic_iterate(x, w, tol=1e-3, max_steps=50):  # counts loop checks, not updates (off by one)
    y, steps = x, 0
    while steps < max_steps:
        y_new = torch.tanh(w * y)
        done = (y_new - y).abs().max() < tol
        y = y_new
        if done:
            break
        steps += 1
    return y, steps
''',
    ],
    "no_grad_forward": [
        '''
def no_grad_forward(model, x):  # eval() switches dropout/batch norm, it does not stop recording
    model.eval()
    return model(x)
''',
        '''
def no_grad_forward(model, x):  # freezes the parameters for good
    for p in model.parameters():
        p.requires_grad_(False)
    return model(x)
''',
        '''
def no_grad_forward(model, x):  # switches recording off globally and never back on
    torch.set_grad_enabled(False)
    return model(x)
''',
    ],
}


# Answers that delegate to the course's own reference implementation: each must lose the
# exercise's points (read from the answer's text, or refused at run time when the name is computed).

MUTANTS["dynamic_iterate"].append("""def dynamic_iterate(*args, **kwargs):
    from course.checks.autograd import reference_dynamic_iterate
    return reference_dynamic_iterate(*args, **kwargs)""")

MUTANTS["Sigmoid"].append("""class Sigmoid(torch.autograd.Function):  # the forward is the course's
    @staticmethod
    def forward(ctx, x):
        from course.checks.autograd import reference_sigmoid
        y = reference_sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return grad_output * y * (1 - y)""")


# The tightened contract: one call of f on a leaf, autograd only; no graph built in no_grad_forward.
MUTANTS["jacobian"] += [
    """def jacobian(f, x):  # one forward per row: right numbers, f called m times
    x = x.detach().requires_grad_(True)
    m = f(x).shape[0]
    return torch.stack([torch.autograd.grad(f(x)[i], x)[0] for i in range(m)])""",
    """def jacobian(f, x):  # central finite differences: no autograd at all
    x = x.detach().double()
    eps = 1e-6
    cols = []
    for j in range(x.shape[0]):
        e = torch.zeros_like(x)
        e[j] = eps
        cols.append((f(x + e) - f(x - e)) / (2 * eps))
    return torch.stack(cols, dim=1).to(x.dtype)""",
    """def jacobian(f, x):  # torch.func does it for you
    from torch.func import jacrev
    return jacrev(f)(x.detach())""",
    """def jacobian(f, x):  # differentiates with respect to a copy of a leaf, not the leaf f saw
    leaf = x.detach().requires_grad_(True)
    z = leaf * 1.0
    y = f(z)
    return torch.stack([torch.autograd.grad(y[i], z, retain_graph=True)[0] for i in range(y.shape[0])])""",
]
MUTANTS["hvp"] += [
    """def hvp(f, x, v):  # finite differences of the gradient
    eps = 1e-6
    def g(z):
        z = z.detach().requires_grad_(True)
        return torch.autograd.grad(f(z), z, allow_unused=True)[0]
    gp, gm = g(x + eps * v), g(x - eps * v)
    if gp is None:
        return torch.zeros_like(x)
    return (gp - gm) / (2 * eps)""",
    """def hvp(f, x, v):  # torch.func: forward-over-reverse
    from torch.func import grad, jvp
    return jvp(grad(f), (x.detach(),), (v,))[1]""",
    """def hvp(f, x, v):  # the gradient from one call, the Hessian part from another
    x1 = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x1), x1, create_graph=True)
    x2 = x.detach().requires_grad_(True)
    (g2,) = torch.autograd.grad(f(x2), x2, create_graph=True)
    if not g2.requires_grad:
        return torch.zeros_like(x)
    (hv,) = torch.autograd.grad(g2, x2, grad_outputs=v, allow_unused=True)
    return torch.zeros_like(x) if hv is None else hv.detach()""",
]
MUTANTS["no_grad_forward"] += [
    """def no_grad_forward(model, x):  # builds the graph, then cuts it
    return model(x).detach()""",
    """def no_grad_forward(model, x):  # freezes the parameters for the call only: the input may still record
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        out = model(x)
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
    return out.detach()""",
    """def no_grad_forward(model, x):  # runs the forward with tracking on, then again without
    model(x)
    with torch.no_grad():
        return model(x)""",
]


MUTANTS["RoundSTE"].append("""class RoundSTE(torch.autograd.Function):  # the forward is the course's
    @staticmethod
    def forward(ctx, x):
        from course.checks.autograd import straight_through_reference
        return straight_through_reference(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output""")
