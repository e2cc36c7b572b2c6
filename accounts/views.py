from django.contrib.auth import login
from django.contrib.auth.models import Group
from django.shortcuts import redirect, render

from .forms import SignUpForm
from .roles import UPLOADER
from .services import author_for_user


def signup(request):
    """Anyone may sign up; they become an uploader."""
    if request.method == "POST":
        form = SignUpForm(request.POST)
        if form.is_valid():
            user = form.save()
            user.groups.add(Group.objects.get_or_create(name=UPLOADER)[0])
            author_for_user(user)
            login(request, user)
            return redirect("uploads:upload")
    else:
        form = SignUpForm()
    return render(request, "accounts/signup.html", {"form": form})
