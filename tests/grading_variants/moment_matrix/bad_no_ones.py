# grading: fail shape "n+1"
def moment_matrix(a):
    return a.T @ a / a.shape[0]
